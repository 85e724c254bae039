package perf

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/sori-dev/sori/internal/tools/wsclient"
)

// Client is a minimal WebSocket (RFC 6455) or length-prefixed raw TCP client
// on a plain net.Conn, written for load: no goroutines of its own, one
// buffered reader, frames returned as slices of that reader's buffer. It is
// not safe for concurrent use, except that one goroutine may read while
// another writes.
type Client struct {
	nc   net.Conn
	br   *bufio.Reader
	raw  bool   // length-prefixed frames (raw TCP harness) instead of WebSocket
	buf  []byte // reader's scratch for payloads larger than br
	wbuf []byte // writer's frame buffer
}

// FrameSizeOf returns how many bytes a server frame carrying payload n bytes
// long takes on the wire; the raw harness uses the same framing cost so that
// both servers move the same number of bytes.
func FrameSizeOf(n int) int {
	switch {
	case n <= 125:
		return 2 + n
	case n <= 0xffff:
		return 4 + n
	default:
		return 10 + n
	}
}

// DialOptions configures Dial.
type DialOptions struct {
	Addr      string // host:port of the server
	Path      string // WebSocket path; "" dials the raw TCP harness
	LocalIP   net.IP // source address (spread load over 127.0.0.x); nil = any
	ReadBytes int    // read buffer size; default 4 KiB
	Timeout   time.Duration
}

// Dial connects and, for WebSocket, performs the opening handshake with the
// sori.v1 subprotocol.
func Dial(o DialOptions) (*Client, error) {
	if o.ReadBytes <= 0 {
		o.ReadBytes = 4 << 10
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	d := net.Dialer{Timeout: o.Timeout}
	if o.LocalIP != nil {
		d.LocalAddr = &net.TCPAddr{IP: o.LocalIP}
	}
	nc, err := d.Dial("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("perf: dial %s: %w", o.Addr, err)
	}
	c := &Client{nc: nc, br: bufio.NewReaderSize(nc, o.ReadBytes), raw: o.Path == ""}
	if c.raw {
		return c, nil
	}
	if err := wsclient.Handshake(c.nc, c.br, o.Addr, o.Path, "sori.v1", o.Timeout); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("perf: handshake with %s: %w", o.Addr, err)
	}
	return c, nil
}

// Send writes one text message (masked with a zero key, which RFC 6455 allows;
// the server's unmasking cost is the same for any key).
func (c *Client) Send(msg []byte) error {
	if c.raw {
		c.wbuf = append(binary.BigEndian.AppendUint16(c.wbuf[:0], uint16(len(msg))), msg...)
	} else {
		c.wbuf = wsclient.AppendFrame(c.wbuf[:0], wsclient.OpText, msg)
	}
	_, err := c.nc.Write(c.wbuf)
	return err
}

var errFragmented = errors.New("perf: fragmented or oversized frame")

// Next returns the payload of the next data frame; control frames are
// skipped (pings are not answered: the servers under test run with long
// heartbeat intervals). The slice is valid until the next call.
func (c *Client) Next() ([]byte, error) {
	for {
		if c.raw {
			h, err := c.peek(2)
			if err != nil {
				return nil, err
			}
			n := int(binary.BigEndian.Uint16(h))
			_, _ = c.br.Discard(2)
			return c.payload(n)
		}
		h, err := c.peek(2)
		if err != nil {
			return nil, err
		}
		op, fin, n := h[0]&0x0f, h[0]&0x80 != 0, int(h[1]&0x7f)
		_, _ = c.br.Discard(2)
		switch n {
		case 126:
			x, err := c.peek(2)
			if err != nil {
				return nil, err
			}
			n = int(binary.BigEndian.Uint16(x))
			_, _ = c.br.Discard(2)
		case 127:
			x, err := c.peek(8)
			if err != nil {
				return nil, err
			}
			v := binary.BigEndian.Uint64(x)
			_, _ = c.br.Discard(8)
			if v > 1<<24 {
				return nil, errFragmented
			}
			n = int(v)
		}
		if !fin {
			return nil, errFragmented
		}
		p, err := c.payload(n)
		if err != nil {
			return nil, err
		}
		switch op {
		case 0x1, 0x2:
			return p, nil
		case 0x8:
			return nil, fmt.Errorf("perf: server closed: %w", closeError(p))
		}
	}
}

func (c *Client) peek(n int) ([]byte, error) { return c.br.Peek(n) }

// payload returns the next n bytes, from the reader's buffer when they fit.
func (c *Client) payload(n int) ([]byte, error) {
	if n <= c.br.Size() {
		p, err := c.br.Peek(n)
		if err != nil {
			return nil, err
		}
		_, _ = c.br.Discard(n)
		return p, nil
	}
	if cap(c.buf) < n {
		c.buf = make([]byte, n)
	}
	p := c.buf[:n]
	_, err := io.ReadFull(c.br, p)
	return p, err
}

func closeError(p []byte) error {
	if len(p) < 2 {
		return errors.New("close without code")
	}
	return fmt.Errorf("close %d %q", binary.BigEndian.Uint16(p), p[2:])
}

// Until reads frames until one contains marker and returns it.
func (c *Client) Until(marker []byte) ([]byte, error) {
	for {
		p, err := c.Next()
		if err != nil {
			return nil, err
		}
		if bytes.Contains(p, marker) {
			return p, nil
		}
	}
}

// SetReadDeadline sets the connection's read deadline.
func (c *Client) SetReadDeadline(t time.Time) error { return c.nc.SetReadDeadline(t) }

// Close closes the connection.
func (c *Client) Close() error { return c.nc.Close() }
