package bench

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
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
}

// dialWS connects with d and performs the opening handshake for path.
func dialWS(d *net.Dialer, addr, path, subprotocol string, timeout time.Duration) (*wsConn, error) {
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &wsConn{nc: nc, br: bufio.NewReaderSize(nc, 4<<10)}
	_ = nc.SetDeadline(time.Now().Add(timeout))
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13" +
		"\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	if subprotocol != "" {
		req += "Sec-WebSocket-Protocol: " + subprotocol + "\r\n"
	}
	if _, err := io.WriteString(nc, req+"\r\n"); err != nil {
		_ = nc.Close()
		return nil, err
	}
	status, err := c.br.ReadSlice('\n')
	if err == nil && !bytes.HasPrefix(status, []byte("HTTP/1.1 101")) {
		err = fmt.Errorf("handshake: status %q", bytes.TrimSpace(status))
	}
	for err == nil {
		var line []byte
		if line, err = c.br.ReadSlice('\n'); err == nil && len(bytes.TrimSpace(line)) == 0 {
			break
		}
	}
	if err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("bench: dial %s%s: %w", addr, path, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

// send writes one text message, masked with a zero key (RFC 6455 allows
// any key; the server's unmasking costs the same).
func (c *wsConn) send(msg []byte) error {
	b := append(c.wbuf[:0], 0x81)
	switch n := len(msg); {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, 0, 0, 0, 0)
	b = append(b, msg...)
	c.wbuf = b
	_, err := c.nc.Write(b)
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
			c.wbuf = append(append(c.wbuf[:0], 0x8a, 0x80|byte(len(p))), 0, 0, 0, 0)
			c.wbuf = append(c.wbuf, p...)
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

func (c *wsConn) close() error {
	_, _ = c.nc.Write([]byte{0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8})
	return c.nc.Close()
}
