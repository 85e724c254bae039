// Package wstest is a WebSocket client written by hand against RFC 6455, for
// tests: it can send what no well-behaved library would (unmasked frames,
// reserved bits and opcodes, fragmented control frames, invalid UTF-8, any
// handshake header) and stop reading at will. The ws package's tests and the
// server's use it. It must never import any other Sori package: it speaks
// the wire format only.
package wstest

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Timeout bounds each read and write of the helpers, so a server that
// stops answering fails the test instead of hanging it.
const Timeout = 10 * time.Second

// Conn is one client connection after the opening handshake. It is not
// safe for concurrent use.
type Conn struct {
	T    testing.TB
	NC   net.Conn
	BR   *bufio.Reader
	Resp *http.Response // the handshake response
}

// Handshake opens a TCP connection to addr (host:port), calls setup on it
// (nil = nothing), and sends GET /ws with the standard upgrade headers and
// the sori.v1 subprotocol. Each extra "Name: value" replaces the standard
// header of that name (an empty value leaves it out) or, for any other
// name, is added as a line of its own, so a header may be sent twice. It
// returns the connection and the response, whatever its status.
func Handshake(t testing.TB, addr string, setup func(*net.TCPConn), extra ...string) (*Conn, *http.Response) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(nc.(*net.TCPConn))
	}
	t.Cleanup(func() { _ = nc.Close() })
	var key [16]byte
	_, _ = rand.Read(key[:])
	std := []string{"Host", "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Protocol"}
	values := map[string]string{
		"Host":                   addr,
		"Upgrade":                "websocket",
		"Connection":             "Upgrade",
		"Sec-WebSocket-Key":      base64.StdEncoding.EncodeToString(key[:]),
		"Sec-WebSocket-Version":  "13",
		"Sec-WebSocket-Protocol": "sori.v1",
	}
	var added []string
	for _, h := range extra {
		name, value, _ := strings.Cut(h, ":")
		value = strings.TrimSpace(value)
		if _, ok := values[name]; ok {
			values[name] = value
		} else if value != "" {
			added = append(added, name+": "+value)
		}
	}
	var b strings.Builder
	b.WriteString("GET /ws HTTP/1.1\r\n")
	for _, name := range std {
		if v := values[name]; v != "" {
			fmt.Fprintf(&b, "%s: %s\r\n", name, v)
		}
	}
	for _, h := range added {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	_ = nc.SetDeadline(time.Now().Add(Timeout))
	if _, err := io.WriteString(nc, b.String()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read handshake response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	_ = nc.SetDeadline(time.Time{})
	return &Conn{T: t, NC: nc, BR: br, Resp: resp}, resp
}

// Dial is Handshake requiring 101 Switching Protocols.
func Dial(t testing.TB, addr string, setup func(*net.TCPConn), extra ...string) *Conn {
	t.Helper()
	c, resp := Handshake(t, addr, setup, extra...)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake status %d, want 101", resp.StatusCode)
	}
	return c
}

// Frame encodes one masked client frame; first is the whole first byte
// (FIN|RSV|opcode).
func Frame(first byte, payload []byte) []byte { return encode(first, payload, false) }

// FrameOpts shapes one client frame for WriteFrame.
type FrameOpts struct {
	Op       byte
	NotFin   bool // a fragment that more follow
	Unmasked bool // break the rule that client frames are masked
	RSV      byte // RSV bits, already shifted (0x40, 0x20, 0x10)
}

// WriteFrame sends one frame shaped by o.
func (c *Conn) WriteFrame(o FrameOpts, payload []byte) {
	c.T.Helper()
	first := o.Op | o.RSV
	if !o.NotFin {
		first |= 0x80
	}
	c.Write(encode(first, payload, o.Unmasked))
}

func encode(first byte, payload []byte, unmasked bool) []byte {
	maskBit := byte(0x80)
	if unmasked {
		maskBit = 0
	}
	b := []byte{first}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, maskBit|byte(n))
	case n <= 0xffff:
		b = append(b, maskBit|126, byte(n>>8), byte(n))
	default:
		b = append(b, maskBit|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if unmasked {
		return append(b, payload...)
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	b = append(b, mask[:]...)
	for i, c := range payload {
		b = append(b, c^mask[i%4])
	}
	return b
}

// Write sends b as it is, within Timeout.
func (c *Conn) Write(b []byte) {
	c.T.Helper()
	_ = c.NC.SetWriteDeadline(time.Now().Add(Timeout))
	if _, err := c.NC.Write(b); err != nil {
		c.T.Fatalf("write: %v", err)
	}
}

// Text sends s in one masked text frame.
func (c *Conn) Text(s string) { c.T.Helper(); c.Write(Frame(0x81, []byte(s))) }

// ReadFrame reads one server frame within Timeout and returns its first
// byte (FIN|RSV|opcode) and payload. A masked server frame is an error.
func (c *Conn) ReadFrame() (first byte, payload []byte, err error) {
	_ = c.NC.SetReadDeadline(time.Now().Add(Timeout))
	var h [2]byte
	if _, err := io.ReadFull(c.BR, h[:]); err != nil {
		return 0, nil, err
	}
	if h[1]&0x80 != 0 {
		return 0, nil, errors.New("server frame is masked")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		if _, err := io.ReadFull(c.BR, e[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(e[:]))
	case 127:
		var e [8]byte
		if _, err := io.ReadFull(c.BR, e[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(e[:])
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.BR, payload); err != nil {
		return 0, nil, err
	}
	return h[0], payload, nil
}

// ReadJSON returns the next text frame as JSON, skipping pings and pongs;
// any other frame fails the test.
func (c *Conn) ReadJSON() map[string]any {
	c.T.Helper()
	for {
		first, p, err := c.ReadFrame()
		if err != nil {
			c.T.Fatalf("read: %v", err)
		}
		switch op := first & 0x0f; op {
		case 0x9, 0xA:
			continue
		case 0x1:
			var m map[string]any
			if err := json.Unmarshal(p, &m); err != nil {
				c.T.Fatalf("server sent invalid JSON %q", p)
			}
			return m
		default:
			c.T.Fatalf("frame op %#x (%q), want text", op, p)
		}
	}
}

// Reply reads frames until a text frame containing want and returns it.
func (c *Conn) Reply(want string) string {
	c.T.Helper()
	for {
		first, p, err := c.ReadFrame()
		if err != nil {
			c.T.Fatalf("waiting for %q: %v", want, err)
		}
		if first&0x0f == 0x1 && strings.Contains(string(p), want) {
			return string(p)
		}
	}
}

// CloseFrame reads until the server's close frame and returns its status
// code (1005 when it has none) and reason; the connection ending without
// one fails the test.
func (c *Conn) CloseFrame() (int, string) {
	c.T.Helper()
	for {
		first, p, err := c.ReadFrame()
		if err != nil {
			c.T.Fatalf("connection ended without a close frame: %v", err)
		}
		if first&0x0f == 0x8 {
			if len(p) < 2 {
				return 1005, ""
			}
			return int(binary.BigEndian.Uint16(p)), string(p[2:])
		}
	}
}

// CloseCode is CloseFrame's status code.
func (c *Conn) CloseCode() int {
	c.T.Helper()
	code, _ := c.CloseFrame()
	return code
}

// Connect sends a connect command with tok and requires its success.
func (c *Conn) Connect(tok string) {
	c.T.Helper()
	c.Text(fmt.Sprintf(`{"id":1,"op":"connect","token":%q}`, tok))
	if m := c.ReadJSON(); m["result"] == nil {
		c.T.Fatalf("connect: %v", m)
	}
}

// EOF reads until the server ends the TCP connection and returns what ended
// it (io.EOF for a clean end); the read deadline is Timeout, so a server
// still waiting for something shows as a timeout.
func (c *Conn) EOF() error {
	c.T.Helper()
	_ = c.NC.SetReadDeadline(time.Now().Add(Timeout))
	_, err := io.Copy(io.Discard, c.BR)
	if err == nil {
		return io.EOF
	}
	return err
}
