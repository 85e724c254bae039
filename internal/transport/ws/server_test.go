package ws_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/auth"
	"github.com/sori-dev/sori/internal/hub"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/session"
	"github.com/sori-dev/sori/internal/transport/ws"
	"github.com/sori-dev/sori/internal/transport/ws/wstest"
)

// wsServer is a real node behind the real /ws handler on a loopback port.
type wsServer struct {
	addr     string
	hub      *hub.Hub
	node     *session.Node
	verifier *auth.Verifier
}

// startWS starts a server with the defaults of `sori serve` (the reader
// parked in the poller, writes from the write pool, on Linux); startWSOpts
// takes the options as they are.
func startWS(t *testing.T, cfg session.Config, opts ws.Options) *wsServer {
	t.Helper()
	opts.Poll = true
	opts.WritePool = true
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

// client is wstest's hand-written RFC 6455 client, so that a test can send
// what no library would and stop reading at will.
type client = wstest.Conn

// dial performs the opening handshake with s, with extra headers ("Name:
// value"), and requires 101.
func dial(t *testing.T, s *wsServer, setup func(*net.TCPConn), extra ...string) *client {
	t.Helper()
	return wstest.Dial(t, s.addr, setup, extra...)
}

// frame encodes a masked client frame; first is FIN|RSV|opcode.
func frame(first byte, payload []byte) []byte { return wstest.Frame(first, payload) }
