package ws

import (
	"net"
	"time"

	"github.com/sori-dev/sori/internal/protocol"
)

// The end of a connection, on the reader goroutine.

// fail starts the closing handshake with d (a protocol violation, a refused
// message, a timeout) and returns the reader's ending.
func (c *conn) fail(d protocol.Disconnect) *ending {
	c.Close(d)
	return &ending{d: d}
}

// end finishes the connection: it waits until the writer is done with our
// close frame (bounded by the write deadline Close set), tells the session,
// and closes the socket gracefully (linger).
func (c *conn) end(e ending) {
	reason := e.d
	if cs := c.closing.Load(); cs != nil {
		// The writer's close frame write is bounded by the deadline Close
		// set; the timer only guards against a bug leaving a reader behind.
		t := time.NewTimer(c.opts.CloseTimeout + time.Second)
		select {
		case <-cs.sent:
		case <-t.C:
		}
		t.Stop()
		reason = cs.d
	}
	if c.pl != nil && c.reg.Registered() {
		c.pl.Remove(&c.reg, c.sock) // before the socket closes: the descriptor is still ours
	}
	c.peer.Closed(reason)
	if !e.broken {
		c.linger()
	}
	c.releaseRead()
	_ = c.nc.Close()
}

// linger half-closes the connection after our close frame and discards what
// the peer still sends until it closes its side, within CloseTimeout.
// Closing a socket with unread input makes the kernel send a reset, which can
// destroy our close frame before the peer read it (a peer that was still
// sending when the server failed the connection); the FIN after the close
// frame tells the peer at once that nothing else comes, so it does not wait
// for a close frame of ours it already has nor we for one it already sent.
func (c *conn) linger() {
	c.releaseRead() // what is buffered is discarded
	c.br = nil
	lingerClose(c.nc, c.opts.CloseTimeout)
}

// lingerClose half-closes nc after the close frame, discards input until the
// peer closes or timeout passes, then closes nc (see linger).
func lingerClose(nc net.Conn, timeout time.Duration) {
	if hc, ok := nc.(interface{ CloseWrite() error }); ok {
		_ = hc.CloseWrite()
	}
	_ = nc.SetReadDeadline(time.Now().Add(timeout))
	bp := readPool.Get().(*[]byte)
	for {
		if _, err := nc.Read(*bp); err != nil {
			break
		}
	}
	readPool.Put(bp)
	_ = nc.Close()
}
