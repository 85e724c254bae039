package ws

import (
	"bufio"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/session"
	"github.com/sori-dev/sori/internal/transport/netpoll"
)

// conn is one WebSocket connection.
//
// Goroutines. The reader (read.go) is one goroutine at a time, never the HTTP
// handler's: ServeHTTP starts it and returns. After each message the reader
// either keeps reading on its goroutine, while the peer keeps sending, or
// starts a fresh goroutine for the wait and ends (nextSoon), so an idle
// connection's only goroutine has a minimal stack; with a poller
// (Options.Poll, poll.go) an idle connection has no goroutine at all, and
// the poller starts the reader when the socket becomes readable. The writer
// (write.go) runs only while frames are queued (Wake) and stops when the
// queue is empty: an idle connection has no writer and holds no buffer. With
// a write pool (Options.WritePool, writepool.go) the writer is one turn of a
// shared pool goroutine at a time; without one, or once a write has to wait
// for the peer or a close is pending, it is a goroutine of the connection.
// Either way one writer at a time (the writing flag).
// Close may be called from any goroutine, any number of times; the first call
// wins.
//
// Ownership. Fields marked "reader" are touched only by the reader; fields
// marked "writer" only by the writer; the atomics coordinate the two. The
// close frame is written by the writer only (after every queued frame), and
// the reader closes the socket only once that write is over (closeState.sent),
// so the close frame is never cut off by our own close.
type conn struct {
	nc          net.Conn
	br          *bufio.Reader // reader: bytes the HTTP server read past the handshake; nil once consumed
	peer        session.Conn  // the session; set by Attach before any use
	opts        *Options
	deflate     bool  // permessage-deflate negotiated
	binary      bool  // the binary codec (sori.v1.msgpack) negotiated: binary frames both ways
	deflateBits uint8 // the server's LZ77 window the peer allows (RFC 7692 §7.1.2.1); 8–15

	writing   atomic.Bool                // a writer runs (or the conn waits on the write pool's list)
	closing   atomic.Pointer[closeState] // set once, by the first Close
	closeSent atomic.Bool                // the writer is done with the close frame (written or failed)

	scratch       [14]byte // reader: frame header
	first         [1]byte  // reader: the byte waitQuiet read, when hasFirst
	hasFirst      bool     // reader
	readErr       error    // reader: the error waitQuiet's read ended with, for the frame loop
	writeDeadline int64    // writer: unix nanos of the deadline it last set

	wp *writePool // nil: each writer is a goroutine of the connection
	// sock is the socket, for the pool's non-blocking writes and the
	// poller; nil when neither is used or nc exposes none.
	sock syscall.RawConn

	// Read-ahead while the peer keeps sending (see nextSoon); reader only.
	rbuf       *[]byte // from readPool; nil on an idle connection
	rpos, rend int32   // unread bytes are (*rbuf)[rpos:rend] (the buffer is 4 KiB)

	// Parking in the poller (poll.go): an idle connection without a goroutine.
	pl       *netpoll.Poller[conn] // reader: nil = the reader waits on a goroutine
	rstate   atomic.Int32          // readerActive, readerArming, readerParked or readerWoken
	deadline atomic.Int64          // unix nanos: when a parked connection times out
	reg      netpoll.Reg           // reader: the socket's registration in pl
}

// closeState is a close in progress: the reason sent to the peer and a
// channel closed once the writer is done with the close frame.
type closeState struct {
	d    protocol.Disconnect
	sent chan struct{}
}

// Attach implements session.Attacher: the session becomes the conn's peer
// before any other goroutine can reach the conn through it.
func (c *conn) Attach(s *session.Session) { c.peer = s }

// Kind implements session.Transport.
func (c *conn) Kind() string { return "websocket" }

// Wake implements session.Transport.
func (c *conn) Wake() {
	if c.writing.CompareAndSwap(false, true) {
		if c.wp != nil {
			c.wp.submit(c)
		} else {
			go c.writeLoop()
		}
	}
}

// Ping implements session.Transport.
func (c *conn) Ping() { c.peer.SendControl(session.ControlPing, nil) }

// Close implements session.Transport: the writer sends what is queued, then
// the close frame; the reader waits (within CloseTimeout) for the peer's
// close frame and ends the connection. Safe to call concurrently; only the
// first call's reason is sent.
func (c *conn) Close(d protocol.Disconnect) {
	cs := &closeState{d: d, sent: make(chan struct{})}
	if !c.closing.CompareAndSwap(nil, cs) {
		return
	}
	// Bound how long a stuck peer can hold the writer, and the whole close
	// whatever the peer does.
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.opts.CloseTimeout))
	time.AfterFunc(c.opts.CloseTimeout+time.Second, c.closeSocket)
	c.Wake()
}

// closePending reports whether a close frame waits for the writer.
func (c *conn) closePending() bool { return c.closing.Load() != nil && !c.closeSent.Load() }
