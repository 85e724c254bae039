package server_test

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

// rawConn is a WebSocket client written against RFC 6455 by hand, so tests can
// send what no well-behaved library would (unmasked frames, reserved opcodes,
// fragmented pings, invalid UTF-8) and can stop reading at will.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

// rawDial opens a TCP connection and performs the opening handshake with the
// sori.v1 subprotocol; it requires 101.
func rawDial(t *testing.T, ts *testServer, extraHeaders ...string) *rawConn {
	t.Helper()
	rc, resp := rawHandshake(t, ts, nil, extraHeaders...)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake status %d, want 101", resp.StatusCode)
	}
	return rc
}

// rawHandshake sends a GET /ws with the standard upgrade headers plus extra
// ("Name: value"; a header named in extra with an empty value is left out)
// and returns the connection and the response.
func rawHandshake(t *testing.T, ts *testServer, setup func(*net.TCPConn), extra ...string) (*rawConn, *http.Response) {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(nc.(*net.TCPConn))
	}
	t.Cleanup(func() { _ = nc.Close() })
	var key [16]byte
	_, _ = rand.Read(key[:])
	headers := map[string]string{
		"Host":                   strings.TrimPrefix(ts.URL, "http://"),
		"Upgrade":                "websocket",
		"Connection":             "Upgrade",
		"Sec-WebSocket-Key":      base64.StdEncoding.EncodeToString(key[:]),
		"Sec-WebSocket-Version":  "13",
		"Sec-WebSocket-Protocol": "sori.v1",
	}
	order := []string{"Host", "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Protocol"}
	for _, h := range extra {
		name, value, _ := strings.Cut(h, ":")
		if _, known := headers[name]; !known {
			order = append(order, name)
		}
		headers[name] = strings.TrimSpace(value)
	}
	var b strings.Builder
	b.WriteString("GET /ws HTTP/1.1\r\n")
	for _, name := range order {
		if v := headers[name]; v != "" {
			fmt.Fprintf(&b, "%s: %s\r\n", name, v)
		}
	}
	b.WriteString("\r\n")
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
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
	return &rawConn{t: t, nc: nc, br: br}, resp
}

// frameOpts shapes one outbound frame.
type frameOpts struct {
	op       byte
	notFin   bool
	unmasked bool
	rsv      byte // RSV bits, already shifted (0x40, 0x20, 0x10)
}

func (rc *rawConn) writeFrame(o frameOpts, payload []byte) {
	rc.t.Helper()
	b := []byte{o.op | o.rsv}
	if !o.notFin {
		b[0] |= 0x80
	}
	maskBit := byte(0x80)
	if o.unmasked {
		maskBit = 0
	}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, maskBit|byte(n))
	case n <= 0xffff:
		b = append(b, maskBit|126, byte(n>>8), byte(n))
	default:
		b = append(b, maskBit|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	body := append([]byte(nil), payload...)
	if !o.unmasked {
		var mask [4]byte
		_, _ = rand.Read(mask[:])
		b = append(b, mask[:]...)
		for i := range body {
			body[i] ^= mask[i%4]
		}
	}
	_ = rc.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := rc.nc.Write(append(b, body...)); err != nil {
		rc.t.Fatalf("write frame: %v", err)
	}
}

func (rc *rawConn) sendText(s string) { rc.writeFrame(frameOpts{op: 0x1}, []byte(s)) }

// readFrame reads one server frame (servers never mask).
func (rc *rawConn) readFrame() (op byte, payload []byte, err error) {
	_ = rc.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var h [2]byte
	if _, err := io.ReadFull(rc.br, h[:]); err != nil {
		return 0, nil, err
	}
	if h[1]&0x80 != 0 {
		return 0, nil, errors.New("server frame is masked")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		if _, err := io.ReadFull(rc.br, e[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(e[:]))
	case 127:
		var e [8]byte
		if _, err := io.ReadFull(rc.br, e[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(e[:])
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(rc.br, payload); err != nil {
		return 0, nil, err
	}
	return h[0] & 0x0f, payload, nil
}

// readJSON returns the next text frame as JSON, skipping pings.
func (rc *rawConn) readJSON() map[string]any {
	rc.t.Helper()
	for {
		op, p, err := rc.readFrame()
		if err != nil {
			rc.t.Fatalf("read: %v", err)
		}
		switch op {
		case 0x9, 0xA:
			continue
		case 0x1:
			var m map[string]any
			if err := json.Unmarshal(p, &m); err != nil {
				rc.t.Fatalf("server sent invalid JSON %q", p)
			}
			return m
		default:
			rc.t.Fatalf("frame op %#x (%q), want text", op, p)
		}
	}
}

// closeCode reads until the server's close frame and returns its status code;
// it fails the test if the connection ends without one.
func (rc *rawConn) closeCode() int {
	rc.t.Helper()
	code, _ := rc.closeFrame()
	return code
}

// closeFrame reads until the server's close frame and returns its status code
// and reason.
func (rc *rawConn) closeFrame() (int, string) {
	rc.t.Helper()
	for {
		op, p, err := rc.readFrame()
		if err != nil {
			rc.t.Fatalf("connection ended without a close frame: %v", err)
		}
		if op == 0x8 {
			if len(p) < 2 {
				return 1005, ""
			}
			return int(binary.BigEndian.Uint16(p)), string(p[2:])
		}
	}
}

// connect sends a connect command with tok and requires success.
func (rc *rawConn) connect(tok string) {
	rc.t.Helper()
	rc.sendText(fmt.Sprintf(`{"id":1,"op":"connect","token":%q}`, tok))
	if m := rc.readJSON(); m["result"] == nil {
		rc.t.Fatalf("connect: %v", m)
	}
}
