package ws

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/session"
)

// Peer is the session behind a connection, as the frame loop sees it.
// *session.Session implements it.
type Peer interface {
	Handle(msg []byte) *protocol.Disconnect
	Drain() []session.Frame
	Idle()
	Pending() bool
	Wrote(frames, bytes int, oldestPublishedAt int64)
	SendControl(op byte, payload []byte)
	Closed(d protocol.Disconnect)
}

// conn is one WebSocket connection. Its reader runs in the goroutine that
// accepted it; its writer is a goroutine started on demand when frames are
// queued and ended when the queue is empty, so an idle connection holds one
// goroutine (the reader, blocked on a 2-byte header read) and no buffers.
type conn struct {
	nc      net.Conn
	br      *bufio.Reader // bytes the HTTP server read past the handshake; nil once consumed
	peer    Peer
	opts    *Options
	deflate bool

	writing   atomic.Bool                         // a writer goroutine is running
	closing   atomic.Pointer[protocol.Disconnect] // set once by close
	closeSent atomic.Bool
	closeOnce sync.Once

	scratch       [14]byte // reader only
	writeDeadline int64    // unix nanos of the deadline the writer last set; writer only

	// Read-ahead while the peer keeps sending (see nextSoon); reader only.
	rbuf       *[]byte // from readPool; nil on an idle connection
	rpos, rend int     // unread bytes are (*rbuf)[rpos:rend]
}

// Attach implements session.Attacher: the session becomes the conn's peer
// before any other goroutine can reach the conn through it.
func (c *conn) Attach(s *session.Session) { c.peer = s }

// Kind implements session.Transport.
func (c *conn) Kind() string { return "websocket" }

// Wake implements session.Transport.
func (c *conn) Wake() {
	if c.writing.CompareAndSwap(false, true) {
		go c.writeLoop()
	}
}

// Ping implements session.Transport.
func (c *conn) Ping() { c.peer.SendControl(session.ControlPing, nil) }

// Close implements session.Transport: the writer sends what is queued and the
// close frame, then the reader waits briefly for the peer's close frame.
func (c *conn) Close(d protocol.Disconnect) {
	if !c.closing.CompareAndSwap(nil, &d) {
		return
	}
	// Bound how long a stuck peer can hold the writer, and the whole close.
	deadline := time.Now().Add(c.opts.CloseTimeout)
	_ = c.nc.SetWriteDeadline(deadline)
	time.AfterFunc(c.opts.CloseTimeout+time.Second, func() { _ = c.nc.Close() })
	c.Wake()
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// putBuf returns a write buffer to the pool unless it grew too large to keep.
func putBuf(bp *[]byte, b []byte) {
	if cap(b) <= 256<<10 {
		*bp = b[:0]
		bufPool.Put(bp)
	}
}

func (c *conn) writeLoop() {
	for {
		frames := c.peer.Drain()
		if len(frames) > 0 {
			if err := c.writeFrames(frames); err != nil {
				_ = c.nc.Close() // the reader sees the error and cleans up
				c.writing.Store(false)
				return
			}
			continue
		}
		if d := c.closing.Load(); d != nil && !c.closeSent.Load() {
			c.sendClose(*d)
		}
		c.peer.Idle()
		c.writing.Store(false)
		// A frame or a close may have arrived between Drain and Store.
		if (c.peer.Pending() || (c.closing.Load() != nil && !c.closeSent.Load())) && c.writing.CompareAndSwap(false, true) {
			continue
		}
		return
	}
}

// writeFrames writes frames with a single write call: measured on loopback,
// 16 frames per write deliver about 12× more than one frame per write.
func (c *conn) writeFrames(frames []session.Frame) error {
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	var (
		oldest int64
		n      int
		zp     *[]byte // compression scratch, only for deflate connections
	)
	for i := range frames {
		f := &frames[i]
		if c.closeSent.Load() {
			break // nothing may follow a close frame (RFC 6455 §5.5.1)
		}
		switch f.Control {
		case 0:
			if c.deflate && len(f.Data) >= c.opts.CompressMin {
				if zp == nil {
					zp = bufPool.Get().(*[]byte)
				}
				*zp = compress((*zp)[:0], f.Data)
				b = appendHeader(b, opText, true, len(*zp))
				b = append(b, *zp...)
			} else {
				b = appendHeader(b, opText, false, len(f.Data))
				b = append(b, f.Data...)
			}
			if f.PublishedAt != 0 && (oldest == 0 || f.PublishedAt < oldest) {
				oldest = f.PublishedAt
			}
		case session.ControlPing:
			b = appendHeader(b, opPing, false, len(f.Data))
			b = append(b, f.Data...)
		case session.ControlPong:
			b = appendHeader(b, opPong, false, len(f.Data))
			b = append(b, f.Data...)
		}
		n++
	}
	if c.closing.Load() == nil {
		c.refreshWriteDeadline()
	}
	_, err := c.nc.Write(b)
	if err == nil {
		c.peer.Wrote(n, len(b), oldest)
	}
	putBuf(bp, b)
	if zp != nil {
		putBuf(zp, *zp)
	}
	return err
}

// refreshWriteDeadline gives the next write at least half of WriteTimeout.
// Setting a deadline modifies a runtime timer, which cost about 5% of the
// writer's CPU when done on every write; moving it only when half of it is
// used keeps a stuck peer bounded by WriteTimeout all the same. Only the
// writer calls it (Close sets its own, shorter deadline).
func (c *conn) refreshWriteDeadline() {
	now := time.Now().UnixNano()
	if c.writeDeadline-now > int64(c.opts.WriteTimeout/2) {
		return
	}
	c.writeDeadline = now + int64(c.opts.WriteTimeout)
	_ = c.nc.SetWriteDeadline(time.Unix(0, c.writeDeadline))
}

// sendClose writes the close frame once and gives the peer a moment to answer
// with its own (RFC 6455 §7.1.1: the server closes TCP after the exchange).
func (c *conn) sendClose(d protocol.Disconnect) {
	if !c.closeSent.CompareAndSwap(false, true) {
		return
	}
	body := closeBody(d.Code, d.Reason)
	b := appendHeader(make([]byte, 0, 4+len(body)), opClose, false, len(body))
	b = append(b, body...)
	_, err := c.nc.Write(b)
	if err != nil {
		_ = c.nc.Close()
		return
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(c.opts.CloseTimeout))
}

// Read side.

func (c *conn) Read(p []byte) (int, error) {
	if c.rpos < c.rend {
		n := copy(p, (*c.rbuf)[c.rpos:c.rend])
		c.rpos += n
		return n, nil
	}
	if c.br != nil {
		if c.br.Buffered() > 0 {
			return c.br.Read(p)
		}
		c.br = nil // release the handshake buffer
	}
	return c.nc.Read(p)
}

// busyWait is how long a reader that just handled a message waits, on its
// own goroutine, for the peer's next one (see nextSoon).
const busyWait = time.Millisecond

// readPool holds read-ahead buffers of busy connections.
var readPool = sync.Pool{New: func() any { b := make([]byte, 4<<10); return &b }}

// nextSoon reports whether the peer's next frame is already there or arrives
// within busyWait; it reads what has arrived into a pooled read-ahead buffer.
// A peer that sends a stream of messages (a publisher) is then served on the
// same goroutine with one read call per batch, instead of a new goroutine,
// its stack growth and three read calls per message (measured on the
// publish→deliver path: about 5% of the server's CPU). A peer that goes quiet
// is handed off to a fresh goroutine with a small stack, holding no buffer,
// as before.
func (c *conn) nextSoon() bool {
	if c.rpos < c.rend || (c.br != nil && c.br.Buffered() > 0) {
		return true
	}
	if c.closing.Load() != nil {
		c.releaseRead()
		return false
	}
	c.br = nil
	if c.rbuf == nil {
		c.rbuf = readPool.Get().(*[]byte)
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(busyWait))
	n, _ := c.nc.Read(*c.rbuf) // an error shows again on the next read
	if n > 0 {
		c.rpos, c.rend = 0, n
		return true
	}
	c.releaseRead()
	if c.closing.Load() != nil {
		// A close started meanwhile: give the peer its time to answer.
		_ = c.nc.SetReadDeadline(time.Now().Add(c.opts.CloseTimeout))
	}
	return false
}

// releaseRead returns the read-ahead buffer; nothing may be unread in it.
func (c *conn) releaseRead() {
	if c.rbuf != nil {
		readPool.Put(c.rbuf)
		c.rbuf = nil
	}
	c.rpos, c.rend = 0, 0
}

// protocolError closes for a broken frame (RFC 6455 §7.4.1 code 1002).
var disconnectProtocolError = protocol.Disconnect{Code: 1002, Reason: "protocol error"}

// handoff is what serve returns to have the read loop continue on a fresh
// goroutine; it never reaches the wire.
var handoff = protocol.Disconnect{Code: -1}

// readLoop reads frames until the connection ends, then tells the peer.
func (c *conn) readLoop() {
	reason := c.serve()
	if reason == handoff {
		// Handling a message (JSON, auth, the hub) grows a goroutine's stack
		// to 8 KiB or more, and the runtime only shrinks it over later GC
		// cycles. Waiting for the next frame on a fresh goroutine keeps an
		// idle connection's stack at the minimum: measured at 10k idle
		// connections, 6 KiB of stack per connection became 2 KiB.
		go c.readLoop()
		return
	}
	if c.closeSent.Load() || c.closing.Load() != nil {
		if d := c.closing.Load(); d != nil {
			reason = *d
		}
	}
	c.releaseRead()
	_ = c.nc.Close()
	c.peer.Closed(reason)
}

// serve runs the frame loop and returns why the connection ended.
func (c *conn) serve() protocol.Disconnect {
	var (
		h          header
		msg        []byte // the message being assembled from fragments
		msgOp      byte
		compressed bool
		inMessage  bool
		unread     int64 // payload bytes of the current frame not read yet
	)
	fail := func(d protocol.Disconnect) protocol.Disconnect {
		c.Close(d)
		// Skip the rest of the refused frame: parsing its payload as frames
		// would end in a reset that can destroy our close frame in flight.
		c.drainUntilClose(unread)
		return d
	}
	for {
		if c.closing.Load() == nil {
			_ = c.nc.SetReadDeadline(time.Now().Add(c.opts.IdleTimeout))
		}
		if err := readHeader(c, c.scratch[:], &h); err != nil {
			if errors.Is(err, errReservedLength) {
				return fail(disconnectProtocolError)
			}
			d := abnormal(err)
			if d.Code == protocol.DisconnectNoPong.Code && c.closing.Load() == nil {
				return fail(d) // a silent peer that is still there learns why
			}
			return d
		}
		unread = h.length
		// RFC 6455 §5.1: a server must close on an unmasked client frame.
		if !h.masked || h.rsv23 || (h.rsv1 && (!c.deflate || h.op == opContinuation || h.op >= opClose)) {
			return fail(disconnectProtocolError)
		}
		switch h.op {
		case opContinuation, opText, opBinary, opClose, opPing, opPong:
		default:
			return fail(disconnectProtocolError.WithReason("reserved opcode"))
		}
		if h.op >= opClose && (h.length > 125 || !h.fin) {
			return fail(disconnectProtocolError.WithReason("bad control frame"))
		}
		if h.length > int64(c.opts.MaxMessageSize) || int64(len(msg))+h.length > int64(c.opts.MaxMessageSize) {
			return fail(protocol.DisconnectTooBig)
		}
		payload := make([]byte, h.length)
		if _, err := io.ReadFull(c, payload); err != nil {
			return abnormal(err)
		}
		unread = 0
		unmask(payload, h.mask)

		switch h.op {
		case opPing:
			c.peer.SendControl(session.ControlPong, payload)
			continue
		case opPong:
			continue
		case opClose:
			return c.onClose(payload)
		case opContinuation:
			if !inMessage {
				return fail(disconnectProtocolError.WithReason("continuation without a message"))
			}
			msg = append(msg, payload...)
		default: // text or binary
			if inMessage {
				return fail(disconnectProtocolError.WithReason("new message inside a fragmented one"))
			}
			inMessage, msgOp, compressed = true, h.op, h.rsv1
			msg = payload
		}
		if !h.fin {
			if msgOp == opText && !compressed && !validUTF8Prefix(msg) {
				return fail(protocol.DisconnectInvalidUTF8) // fail fast (RFC 6455 §8.1)
			}
			continue
		}
		inMessage = false
		data := msg
		msg = nil
		if compressed {
			var err error
			if data, err = decompress(data, c.opts.MaxMessageSize); err != nil {
				if errors.Is(err, errInflatedTooLarge) {
					return fail(protocol.DisconnectTooBig)
				}
				return fail(protocol.Disconnect{Code: 1007, Reason: "bad compressed data"})
			}
		}
		if msgOp == opText && !utf8.Valid(data) {
			return fail(protocol.DisconnectInvalidUTF8)
		}
		if c.closing.Load() != nil {
			continue // after our close frame, only the peer's close matters
		}
		if d := c.opts.handle(c.peer, msgOp, data); d != nil {
			return fail(*d)
		}
		if !c.nextSoon() {
			return handoff
		}
	}
}

// onClose answers the peer's close frame (RFC 6455 §5.5.1) and ends.
func (c *conn) onClose(payload []byte) protocol.Disconnect {
	code, reason := 1005, ""
	answer := protocol.DisconnectNormal
	switch {
	case len(payload) == 1:
		answer = disconnectProtocolError
	case len(payload) >= 2:
		code = int(payload[0])<<8 | int(payload[1])
		reason = string(payload[2:])
		switch {
		case !validCloseCode(code):
			answer = disconnectProtocolError.WithReason("invalid close code")
		case !utf8.ValidString(reason):
			answer = protocol.DisconnectInvalidUTF8
		default:
			answer = protocol.Disconnect{Code: code, Reason: ""}
		}
	}
	if !c.closeSent.Load() {
		c.closing.CompareAndSwap(nil, &answer)
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.opts.CloseTimeout))
		c.Wake()
		// Give the writer a moment to put the close frame on the wire before
		// the reader closes the socket.
		deadline := time.Now().Add(c.opts.CloseTimeout)
		for !c.closeSent.Load() && time.Now().Before(deadline) && c.writing.Load() {
			time.Sleep(time.Millisecond)
		}
		if !c.closeSent.Load() {
			c.sendCloseDirect(answer)
		}
	}
	return protocol.Disconnect{Code: code, Reason: reason, Reconnect: code != 1000}
}

// sendCloseDirect writes the close frame from the reader when no writer is
// running.
func (c *conn) sendCloseDirect(d protocol.Disconnect) {
	if c.writing.CompareAndSwap(false, true) {
		c.sendClose(d)
		c.writing.Store(false)
	}
}

// drainUntilClose reads (and discards) frames after we sent a close, until the
// peer's close frame, an error, or the close timeout. skip is what is left of
// the payload of the frame being read.
func (c *conn) drainUntilClose(skip int64) {
	deadline := time.Now().Add(c.opts.CloseTimeout)
	_ = c.nc.SetReadDeadline(deadline)
	if _, err := io.CopyN(io.Discard, c, skip); err != nil {
		return
	}
	var h header
	for {
		if err := readHeader(c, c.scratch[:], &h); err != nil {
			return
		}
		if h.length > int64(c.opts.MaxMessageSize) {
			return
		}
		if _, err := io.CopyN(io.Discard, c, h.length); err != nil {
			return
		}
		if h.op == opClose {
			return
		}
	}
}

func abnormal(err error) protocol.Disconnect {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return protocol.DisconnectNoPong
	}
	return protocol.Disconnect{Code: 1006, Reason: "connection lost", Reconnect: true}
}

// validUTF8Prefix reports whether p is valid UTF-8 except, possibly, for an
// incomplete character at its end (the rest may come in the next fragment).
func validUTF8Prefix(p []byte) bool {
	if utf8.Valid(p) {
		return true
	}
	// Drop up to 3 trailing bytes of an unfinished sequence and try again.
	for cut := 1; cut <= 3 && cut <= len(p); cut++ {
		if utf8.RuneStart(p[len(p)-cut]) {
			tail := p[len(p)-cut:]
			if !utf8.FullRune(tail) {
				return utf8.Valid(p[:len(p)-cut])
			}
			return false
		}
	}
	return false
}
