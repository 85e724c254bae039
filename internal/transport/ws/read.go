package ws

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/session"
)

// The read side, in three layers: frames (readFrameHeader, readPayload),
// messages (readMessage: fragments, inflating, UTF-8) and dispatch
// (readLoop). Everything here runs on the reader goroutine.

// disconnectProtocolError closes for a broken frame (RFC 6455 §7.4.1 code 1002).
var disconnectProtocolError = protocol.Disconnect{Code: 1002, Reason: "protocol error"}

// ending is how the reader ends a connection.
type ending struct {
	d      protocol.Disconnect // for the session (and the peer, when we fail the connection)
	broken bool                // the connection failed or timed out: nothing more to exchange
}

// readLoop is the reader. It reads and dispatches messages until the
// connection ends. After a message, it keeps going on this goroutine while
// the peer keeps sending; when the peer goes quiet it hands the wait for the
// next frame to a fresh goroutine: handling a message (JSON, auth, the hub)
// grows a goroutine's stack to 8 KiB or more, and the runtime only shrinks it
// over later GC cycles (measured at 10k idle connections, 6 KiB of stack per
// connection became 2 KiB).
func (c *conn) readLoop() {
	for {
		op, data, end := c.readMessage()
		if end != nil {
			c.end(*end)
			return
		}
		if c.closing.Load() != nil {
			continue // after our close frame, only the peer's close matters
		}
		// op 0: only control frames came (a pong to our heartbeat ping);
		// nothing to handle, and the peer may be idle again.
		if op != 0 {
			handle := c.opts.handle
			if c.binary {
				handle = handleMsgpack
			}
			if d, closing := handle(c.peer, op, data); closing {
				c.end(*c.fail(d))
				return
			}
		}
		if !c.nextSoon() {
			if c.park() {
				return // no goroutine until the socket is readable
			}
			if c.pl == nil {
				go c.waitQuiet()
				return
			}
			// Woken while parking: what woke us is there to read.
		}
	}
}

// waitQuiet is where an idle connection waits: for the first byte of the
// peer's next frame, on a fresh goroutine whose stack is only as deep as this
// one read (the frame loop's calls are deeper and would double the minimum
// stack of every idle connection). The byte, or the error, goes to the frame
// loop through Read.
func (c *conn) waitQuiet() {
	if c.closing.Load() == nil {
		_ = c.nc.SetReadDeadline(time.Now().Add(c.opts.IdleTimeout))
		if c.closeSent.Load() {
			_ = c.nc.SetReadDeadline(time.Now().Add(c.opts.CloseTimeout))
		}
	}
	n, err := c.nc.Read(c.first[:])
	c.hasFirst = n == 1
	if n == 0 {
		c.readErr = err
	}
	c.readLoop()
}

// readMessage reads frames until a complete data message, answering control
// frames on the way, or until the connection must end. When control frames
// arrive outside a message and nothing follows them at once, it returns op 0
// and no data: the reader may then park instead of waiting for the next
// message on its goroutine (an idle peer answering each heartbeat ping with a
// pong would otherwise keep a goroutine from its first pong on).
func (c *conn) readMessage() (op byte, data []byte, end *ending) {
	var (
		msg        []byte // the message so far, compressed if compressed
		compressed bool
		started    bool
		text       utf8Stream
	)
	for {
		h, e := c.readFrameHeader()
		if e != nil {
			return 0, nil, e
		}
		if h.op >= opClose {
			if e := c.control(h); e != nil {
				return 0, nil, e
			}
			if !started && !c.buffered() {
				return 0, nil, nil
			}
			continue
		}
		switch {
		case h.op == opContinuation && !started:
			return 0, nil, c.fail(disconnectProtocolError.WithReason("continuation without a message"))
		case h.op != opContinuation && started:
			return 0, nil, c.fail(disconnectProtocolError.WithReason("new message inside a fragmented one"))
		case h.op != opContinuation:
			started, op, compressed = true, h.op, h.rsv1
		}
		if int64(len(msg))+h.length > int64(c.opts.MaxMessageSize) {
			return 0, nil, c.fail(protocol.DisconnectTooBig)
		}
		// Text is validated as it arrives (RFC 6455 §8.1: fail fast);
		// compressed text once inflated.
		var v *utf8Stream
		if op == opText && !compressed {
			v = &text
		}
		start := len(msg)
		msg = append(msg, make([]byte, h.length)...)
		if err := c.readPayload(msg[start:], h.mask, v); err != nil {
			if errors.Is(err, errInvalidUTF8) {
				return 0, nil, c.fail(protocol.DisconnectInvalidUTF8)
			}
			return 0, nil, &ending{d: abnormal(err), broken: true}
		}
		if !h.fin {
			continue
		}
		if compressed {
			var err error
			if msg, err = decompress(msg, c.opts.MaxMessageSize); err != nil {
				if errors.Is(err, errInflatedTooLarge) {
					return 0, nil, c.fail(protocol.DisconnectTooBig)
				}
				return 0, nil, c.fail(protocol.Disconnect{Code: 1007, Reason: "bad compressed data"})
			}
			if op == opText && !utf8.Valid(msg) {
				return 0, nil, c.fail(protocol.DisconnectInvalidUTF8)
			}
		} else if op == opText && !text.complete() {
			return 0, nil, c.fail(protocol.DisconnectInvalidUTF8)
		}
		return op, msg, nil
	}
}

// readFrameHeader reads the next frame header and checks what RFC 6455
// requires of it before its payload is read.
func (c *conn) readFrameHeader() (header, *ending) {
	if c.closing.Load() == nil && !c.hasFirst && c.readErr == nil {
		_ = c.nc.SetReadDeadline(time.Now().Add(c.opts.IdleTimeout))
		if c.closeSent.Load() {
			// The writer sent a close frame meanwhile and set the close
			// deadline, which ours just replaced.
			_ = c.nc.SetReadDeadline(time.Now().Add(c.opts.CloseTimeout))
		}
	}
	var h header
	if err := readHeader(c, c.scratch[:], &h); err != nil {
		if errors.Is(err, errReservedLength) {
			return h, c.fail(disconnectProtocolError)
		}
		d := abnormal(err)
		if d.Code == protocol.DisconnectNoPong.Code && c.closing.Load() == nil {
			return h, c.fail(d) // a silent peer that is still there learns why
		}
		// Lost, or silent past the close timeout after our close frame.
		return h, &ending{d: d, broken: true}
	}
	switch {
	case !h.masked: // RFC 6455 §5.1: a server must close on an unmasked client frame
		return h, c.fail(disconnectProtocolError)
	case h.rsv23 || (h.rsv1 && (!c.deflate || h.op == opContinuation || h.op >= opClose)):
		return h, c.fail(disconnectProtocolError)
	}
	switch h.op {
	case opContinuation, opText, opBinary, opClose, opPing, opPong:
	default:
		return h, c.fail(disconnectProtocolError.WithReason("reserved opcode"))
	}
	if h.op >= opClose && (h.length > 125 || !h.fin) {
		return h, c.fail(disconnectProtocolError.WithReason("bad control frame"))
	}
	if h.length > int64(c.opts.MaxMessageSize) {
		return h, c.fail(protocol.DisconnectTooBig)
	}
	return h, nil
}

var errInvalidUTF8 = errors.New("ws: invalid UTF-8")

// readPayload reads a frame's payload into p as it arrives, unmasking it and,
// when v is set, validating UTF-8 piece by piece.
func (c *conn) readPayload(p []byte, mask [4]byte, v *utf8Stream) error {
	got := 0
	for got < len(p) {
		n, err := c.Read(p[got:])
		if n > 0 {
			unmaskAt(p[got:got+n], mask, got)
			if v != nil && !v.write(p[got:got+n]) {
				return errInvalidUTF8
			}
			got += n
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// control handles a control frame (ping, pong, close).
func (c *conn) control(h header) *ending {
	payload := make([]byte, h.length)
	if err := c.readPayload(payload, h.mask, nil); err != nil {
		return &ending{d: abnormal(err), broken: true}
	}
	switch h.op {
	case opPing:
		c.peer.SendControl(session.ControlPong, payload)
	case opClose:
		return c.onClose(payload)
	}
	return nil
}

// onClose answers the peer's close frame (RFC 6455 §5.5.1): with its code
// when valid, with 1002 or 1007 when not. The peer has closed: nothing more
// is read.
func (c *conn) onClose(payload []byte) *ending {
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
			answer = protocol.Disconnect{Code: code}
		}
	}
	c.Close(answer) // no-op when we sent ours first
	return &ending{d: protocol.Disconnect{Code: code, Reason: reason, Reconnect: code != 1000}}
}

// Read reads what the peer sent: the read-ahead buffer first, then what the
// HTTP server buffered past the handshake, then the socket.
func (c *conn) Read(p []byte) (int, error) {
	if c.hasFirst && len(p) > 0 {
		c.hasFirst = false
		p[0] = c.first[0]
		return 1, nil
	}
	if err := c.readErr; err != nil {
		c.readErr = nil
		return 0, err
	}
	if c.rpos < c.rend {
		n := copy(p, (*c.rbuf)[c.rpos:c.rend])
		c.rpos += int32(n)
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

// buffered reports whether bytes the peer sent are already read ahead.
func (c *conn) buffered() bool {
	return c.hasFirst || c.rpos < c.rend || (c.br != nil && c.br.Buffered() > 0)
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
// is handed off to a fresh goroutine with a small stack, holding no buffer.
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
		c.rpos, c.rend = 0, int32(n)
		return true
	}
	c.releaseRead()
	if c.closing.Load() != nil {
		// A close started meanwhile, and our deadline replaced the one
		// the writer set: give the peer its time to answer.
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

func abnormal(err error) protocol.Disconnect {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return protocol.DisconnectNoPong
	}
	return protocol.Disconnect{Code: 1006, Reason: "connection lost", Reconnect: true}
}
