package bench

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/sori-dev/sori/internal/tools/wsclient"
)

// wsConn is the load generator's WebSocket client: a hand-written RFC 6455
// client on a raw net.Conn with one small read buffer, no context or
// allocation per frame, so that the load generator's own cost stays small
// next to the server's (a general-purpose client library cost several
// times more CPU per delivery on the pinned load core).
type wsConn struct {
	nc   net.Conn
	br   *bufio.Reader
	buf  []byte // payload of the last frame read; reused
	wbuf []byte
	rx   *rxStamper // with the kernel's receive clock: br reads through it; nil otherwise
}

// dialWS connects with d and performs the opening handshake for path.
// With kernelClock it reads through an rxStamper (when the socket allows),
// and rxTime reports the kernel's receive time of the last frame.
func dialWS(d *net.Dialer, addr, path, subprotocol string, timeout time.Duration, kernelClock bool) (*wsConn, error) {
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &wsConn{nc: nc}
	var src io.Reader = nc
	if kernelClock {
		if c.rx = newRxStamper(nc); c.rx != nil {
			src = c.rx
		}
	}
	c.br = bufio.NewReaderSize(src, 4<<10)
	if err := wsclient.Handshake(nc, c.br, addr, path, subprotocol, timeout); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("bench: dial %s%s: %w", addr, path, err)
	}
	return c, nil
}

// send writes one text message (wsclient.AppendFrame: masked with a zero
// key, which costs the server the same).
func (c *wsConn) send(msg []byte) error {
	c.wbuf = wsclient.AppendFrame(c.wbuf[:0], wsclient.OpText, msg)
	_, err := c.nc.Write(c.wbuf)
	return err
}

var errClosed = errors.New("bench: the server closed the connection")

// next returns the next data frame's payload (valid until the next call),
// answering pings and skipping pongs. Fragmented messages are not used by
// the servers measured; a continuation frame is returned as it is.
func (c *wsConn) next() ([]byte, error) {
	for {
		h, err := c.br.Peek(2)
		if err != nil {
			return nil, err
		}
		op, n := h[0]&0x0f, int(h[1]&0x7f)
		masked := h[1]&0x80 != 0
		hl := 2
		switch n {
		case 126:
			if h, err = c.br.Peek(4); err != nil {
				return nil, err
			}
			n, hl = int(binary.BigEndian.Uint16(h[2:])), 4
		case 127:
			if h, err = c.br.Peek(10); err != nil {
				return nil, err
			}
			n, hl = int(binary.BigEndian.Uint64(h[2:])), 10
		}
		if masked {
			hl += 4
		}
		if _, err := c.br.Discard(hl); err != nil {
			return nil, err
		}
		if cap(c.buf) < n {
			c.buf = make([]byte, n)
		}
		p := c.buf[:n]
		if _, err := io.ReadFull(c.br, p); err != nil {
			return nil, err
		}
		switch op {
		case 0x8:
			if len(p) >= 2 {
				return nil, fmt.Errorf("%w: %d %s", errClosed, binary.BigEndian.Uint16(p), p[2:])
			}
			return nil, errClosed
		case 0x9:
			c.wbuf = wsclient.AppendFrame(c.wbuf[:0], wsclient.OpPong, p)
			if _, err := c.nc.Write(c.wbuf); err != nil {
				return nil, err
			}
			continue
		case 0xa:
			continue
		}
		return p, nil
	}
}

// rxTime is the receive time of the frame next returned last, in unix
// nanos: the kernel's with an rxStamper, otherwise now. The buffered reader
// reads from the socket only when it holds no complete frame, so the last
// read is the one that brought the end of that frame.
func (c *wsConn) rxTime() int64 {
	if c.rx != nil {
		if t := c.rx.lastRx(); t != 0 {
			return t
		}
	}
	return time.Now().UnixNano()
}

func (c *wsConn) close() error {
	_, _ = c.nc.Write(wsclient.AppendFrame(nil, wsclient.OpClose, []byte{0x03, 0xe8})) // 1000, normal closure
	return c.nc.Close()
}
