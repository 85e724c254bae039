package ws

import (
	"os"
	"time"

	"github.com/sori-dev/sori/internal/transport/netpoll"
)

// Idle connections without a goroutine (Options.Poll).
//
// Without a poller, an idle connection's reader is a goroutine blocked in a
// one-byte Read (waitQuiet): at least a 2 KiB stack and a g per connection.
// With one, the reader parks the connection instead: it arms a one-shot
// readiness notification for the socket with the operating system (epoll on
// Linux, package netpoll: one goroutine and one epoll instance per Handler)
// and ends. When the socket becomes readable (data, the
// peer's FIN or an error), the poller starts a goroutine that runs the same
// frame loop (readLoop) until the peer goes quiet again. Deadlines of parked
// connections (the idle timeout, the close timeout) are enforced by the
// poller's sweep, since no Read is pending to carry them.
//
// Ownership of the reader moves with conn.parked: the reader sets it before
// arming and stops touching reader fields; whoever clears it (the poller on
// readiness, the sweep on a deadline, closeSocket) becomes the only one to
// start the next reader. Elsewhere (other systems, TLS connections that do
// not expose their socket, a failed registration) the reader waits on its
// goroutine as before.

// Reader states (conn.rstate). Only the reader moves active → arming →
// parked; a wake moves parked → active (and then starts the reader) or
// arming → woken (the reader, still running, goes on reading itself).
const (
	readerActive int32 = iota // a goroutine runs the frame loop
	readerArming              // the reader is arming the poller; it still owns the conn
	readerParked              // no goroutine: the poller owns the wait
	readerWoken               // readiness or a close arrived while arming
)

// park hands the idle connection to the poller. It reports false when the
// reader must go on: the connection could not be armed (c.pl is then nil and
// the reader waits on a goroutine) or it was woken while arming.
func (c *conn) park() bool {
	if c.pl == nil {
		return false
	}
	wait := c.opts.IdleTimeout
	if c.closing.Load() != nil {
		wait = c.opts.CloseTimeout
	}
	c.deadline.Store(time.Now().Add(wait).UnixNano())
	c.rstate.Store(readerArming)
	if err := c.pl.Arm(&c.reg, c.sock, c); err != nil {
		c.opts.Logger.Debug("websocket poller: arm failed, reading on a goroutine", "err", err)
		c.rstate.Store(readerActive)
		c.pl.Remove(&c.reg, c.sock)
		c.pl = nil
		return false
	}
	if c.rstate.CompareAndSwap(readerArming, readerParked) {
		return true
	}
	c.rstate.Store(readerActive) // woken meanwhile: the event is for us
	return false
}

// wakeReader starts the reader of a parked connection, from any goroutine;
// timedOut delivers a deadline error to the frame loop, as a timed-out Read
// would. A reader that is still arming is told to go on instead.
func (c *conn) wakeReader(timedOut bool) {
	for {
		switch c.rstate.Load() {
		case readerParked:
			if c.rstate.CompareAndSwap(readerParked, readerActive) {
				if timedOut {
					c.readErr = os.ErrDeadlineExceeded
				}
				go c.readLoop()
				return
			}
		case readerArming:
			if timedOut || c.rstate.CompareAndSwap(readerArming, readerWoken) {
				return
			}
		default:
			return
		}
	}
}

// closeSocket closes the socket from any goroutine. A parked connection has
// no reader to notice, and a closed socket leaves the poller's interest set
// without an event: its reader is started here and ends the connection.
func (c *conn) closeSocket() {
	_ = c.nc.Close()
	c.wakeReader(false)
}

// parkDeadline moves the deadline of a parked connection, as a read
// deadline would move for a reader waiting on its goroutine.
func (c *conn) parkDeadline(t time.Time) {
	if c.pl != nil {
		c.deadline.Store(t.UnixNano())
	}
}

// newPoller returns the poller of a Handler's parked connections: readiness
// starts a connection's reader, and the sweep times out parked connections
// whose deadline passed.
func newPoller(o *Options) *netpoll.Poller[conn] {
	return netpoll.NewPoller(netpoll.Options[conn]{
		Log:      o.Logger,
		Ready:    func(c *conn) { c.wakeReader(false) },
		Sweep:    sweepConn,
		Interval: sweepInterval(o),
	})
}

// sweepConn times out c if it is parked and its deadline passed; it runs on
// the poller's goroutine under the poller's lock, and only starts a
// goroutine.
func sweepConn(c *conn, now time.Time) {
	if c.deadline.Load() <= now.UnixNano() && c.rstate.Load() == readerParked {
		c.wakeReader(true)
	}
}

// sweepInterval is how often the poller checks parked connections'
// deadlines: an eighth of the shortest one, between 5 ms and 1 s.
func sweepInterval(o *Options) time.Duration {
	d := min(o.IdleTimeout, o.CloseTimeout) / 8
	return min(max(d, 5*time.Millisecond), time.Second)
}
