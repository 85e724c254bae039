package ws_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/auth"
	"github.com/sori-dev/sori/internal/hub"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/session"
	"github.com/sori-dev/sori/internal/transport/ws"
)

// wsServer is a real node behind the real /ws handler on a loopback port.
type wsServer struct {
	addr     string
	hub      *hub.Hub
	node     *session.Node
	verifier *auth.Verifier
}

// startWS starts a server with the default reader (parked in the poller on
// Linux); startWSOpts takes the options as they are.
func startWS(t *testing.T, cfg session.Config, opts ws.Options) *wsServer {
	t.Helper()
	opts.Poll = true
	return startWSOpts(t, cfg, opts)
}

func startWSOpts(t *testing.T, cfg session.Config, opts ws.Options) *wsServer {
	t.Helper()
	h, err := hub.New(hub.Config{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{HMACSecret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	node := session.NewNode(cfg, h, v, nil, nil)
	mux := http.NewServeMux()
	mux.Handle("GET /ws", ws.NewHandler(node, opts))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := node.Shutdown(ctx, protocol.DisconnectShutdown); err != nil {
			t.Errorf("node shutdown: %v", err)
		}
		h.Close()
	})
	return &wsServer{addr: ln.Addr().String(), hub: h, node: node, verifier: v}
}

func (s *wsServer) token(t *testing.T, user string, channels ...string) string {
	t.Helper()
	tok, err := s.verifier.Mint(auth.NewClaims(user, time.Hour, time.Now(), channels...))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// client is a WebSocket client written by hand against RFC 6455, so that a
// test can send what no library would and stop reading at will.
type client struct {
	t    *testing.T
	nc   net.Conn
	br   *bufio.Reader
	resp *http.Response
}

// dial performs the opening handshake with extra headers ("Name: value").
func dial(t *testing.T, s *wsServer, setup func(*net.TCPConn), extra ...string) *client {
	t.Helper()
	nc, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(nc.(*net.TCPConn))
	}
	t.Cleanup(func() { _ = nc.Close() })
	var key [16]byte
	_, _ = rand.Read(key[:])
	var b strings.Builder
	fmt.Fprintf(&b, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", s.addr)
	fmt.Fprintf(&b, "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", base64.StdEncoding.EncodeToString(key[:]))
	if !slices.ContainsFunc(extra, func(h string) bool { return strings.HasPrefix(h, "Sec-WebSocket-Protocol:") }) {
		b.WriteString("Sec-WebSocket-Protocol: sori.v1\r\n")
	}
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, b.String()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("handshake response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake status %d, want 101", resp.StatusCode)
	}
	_ = nc.SetDeadline(time.Time{})
	return &client{t: t, nc: nc, br: br, resp: resp}
}

// frame encodes a masked client frame; first is FIN|RSV|opcode.
func frame(first byte, payload []byte) []byte {
	b := []byte{first}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	mask := [4]byte{0xa1, 0xb2, 0xc3, 0xd4}
	b = append(b, mask[:]...)
	for i, c := range payload {
		b = append(b, c^mask[i%4])
	}
	return b
}

func (c *client) write(b []byte) {
	c.t.Helper()
	_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) text(s string) { c.t.Helper(); c.write(frame(0x81, []byte(s))) }

// read reads one server frame within 10 s.
func (c *client) read() (first byte, payload []byte, err error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return 0, nil, err
	}
	if h[1]&0x80 != 0 {
		return 0, nil, errors.New("server frame is masked")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		if _, err := io.ReadFull(c.br, e[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(e[:]))
	case 127:
		var e [8]byte
		if _, err := io.ReadFull(c.br, e[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(e[:])
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		return 0, nil, err
	}
	return h[0], payload, nil
}

// closeCode reads until the server's close frame and returns its code; the
// connection ending without one fails the test.
func (c *client) closeCode() int {
	c.t.Helper()
	for {
		first, p, err := c.read()
		if err != nil {
			c.t.Fatalf("connection ended without a close frame: %v", err)
		}
		if first&0x0f == 0x8 {
			if len(p) < 2 {
				return 1005
			}
			return int(binary.BigEndian.Uint16(p))
		}
	}
}

// reply reads text frames until one containing want.
func (c *client) reply(want string) string {
	c.t.Helper()
	for {
		first, p, err := c.read()
		if err != nil {
			c.t.Fatalf("waiting for %q: %v", want, err)
		}
		if first&0x0f == 0x1 && strings.Contains(string(p), want) {
			return string(p)
		}
	}
}

func (c *client) connect(tok string) {
	c.t.Helper()
	c.text(fmt.Sprintf(`{"id":1,"op":"connect","token":%q}`, tok))
	c.reply(`"id":1,"result"`)
}

// eof reads until the server ends the TCP connection and returns what ended
// it; the read deadline is 10 s, far below the close timeouts the tests set,
// so a server still waiting for something shows as a timeout here.
func (c *client) eof() error {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, c.br)
	if err == nil {
		return io.EOF
	}
	return err
}
