package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/sori-dev/sori/internal/config"
	"github.com/sori-dev/sori/internal/server"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// net/http keeps idle client connections' goroutines briefly.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}

// testServer is a real server on a random loopback port.
type testServer struct {
	*server.Server
	URL    string // http://127.0.0.1:port
	WSURL  string // ws://127.0.0.1:port/ws
	APIKey string
	cfg    config.Config
	done   chan error
}

// startServer runs a server in-process; mutate adjusts the default config.
func startServer(t *testing.T, mutate func(*config.Config), opts ...server.Option) *testServer {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.APIKeys = []string{"test-api-key"}
	cfg.TokenSecret = strings.Repeat("s", 32)
	// Test namespaces of their own, so that tests of the core do not depend
	// on what modules (chat) do with the default ones.
	cfg.Namespaces = append(cfg.Namespaces,
		config.Namespace{Name: "room", HistorySize: 200, HistoryTTL: config.Duration(time.Hour), Presence: true, JoinLeave: true, Subscribe: "token"},
		config.Namespace{Name: "small", HistorySize: 5, HistoryTTL: config.Duration(time.Hour)},
	)
	// The embedded TURN server on loopback, on random ports.
	cfg.TURNListen = "127.0.0.1:0"
	cfg.TURNRelayAddress = "127.0.0.1"
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := server.New(cfg, nil, opts...)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: srv, URL: "http://" + ln.Addr().String(), WSURL: "ws://" + ln.Addr().String() + "/ws",
		APIKey: "test-api-key", cfg: cfg, done: make(chan error, 1)}
	go func() { ts.done <- srv.Serve(ln) }()
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

func (ts *testServer) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil && !strings.Contains(err.Error(), "closed") {
		t.Logf("shutdown: %v", err)
	}
	select {
	case <-ts.done:
	case <-time.After(5 * time.Second):
		t.Error("server did not stop")
	}
}

// token mints a connection token for user granting channels.
func (ts *testServer) token(t *testing.T, user string, ttl time.Duration, channels ...string) string {
	t.Helper()
	res := ts.api(t, "/api/token", map[string]any{"user": user, "ttl": ttl.String(), "channels": channels}, http.StatusOK)
	return res["token"].(string)
}

// api POSTs body to a server API path and decodes the JSON answer.
func (ts *testServer) api(t *testing.T, path string, body any, wantStatus int) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, ts.URL+path, strings.NewReader(string(b)))
	req.Header.Set("Authorization", "apikey "+ts.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != wantStatus {
		t.Fatalf("POST %s: status %d, want %d (%v)", path, resp.StatusCode, wantStatus, out)
	}
	return out
}

// client is a protocol client over a real WebSocket (coder/websocket, an
// implementation independent of the server's).
type client struct {
	t      *testing.T
	c      *websocket.Conn
	nextID uint64
	frames chan map[string]any
	closed chan websocket.CloseError
}

func dial(t *testing.T, ts *testServer, opts *websocket.DialOptions) *client {
	t.Helper()
	if opts == nil {
		opts = &websocket.DialOptions{}
	}
	opts.Subprotocols = []string{"sori.v1"}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, ts.WSURL, opts)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	if c.Subprotocol() != "sori.v1" {
		t.Fatalf("subprotocol %q, want sori.v1", c.Subprotocol())
	}
	c.SetReadLimit(8 << 20)
	cl := &client{t: t, c: c, frames: make(chan map[string]any, 10000), closed: make(chan websocket.CloseError, 1)}
	go cl.readLoop()
	t.Cleanup(func() { _ = c.CloseNow() })
	return cl
}

func (cl *client) readLoop() {
	for {
		_, b, err := cl.c.Read(context.Background())
		if err != nil {
			var ce websocket.CloseError
			if ok := asCloseError(err, &ce); ok {
				cl.closed <- ce
			} else {
				cl.closed <- websocket.CloseError{Code: -1, Reason: err.Error()}
			}
			close(cl.frames)
			return
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			cl.t.Errorf("server sent invalid JSON %q: %v", b, err)
			continue
		}
		cl.frames <- m
	}
}

func asCloseError(err error, ce *websocket.CloseError) bool {
	code := websocket.CloseStatus(err)
	if code == -1 {
		return false
	}
	*ce = websocket.CloseError{Code: code, Reason: err.Error()}
	return true
}

// send writes a command (the id is filled in) and returns its id.
func (cl *client) send(cmd map[string]any) uint64 {
	cl.nextID++
	cmd["id"] = cl.nextID
	b, _ := json.Marshal(cmd)
	cl.sendRaw(string(b))
	return cl.nextID
}

func (cl *client) sendRaw(s string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cl.c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		cl.t.Fatalf("write: %v", err)
	}
}

// next returns the next frame, failing the test after a generous deadline
// (a deadline against hangs, not a speed assertion).
func (cl *client) next() map[string]any {
	cl.t.Helper()
	select {
	case m, ok := <-cl.frames:
		if !ok {
			cl.t.Fatalf("connection closed while waiting for a frame")
		}
		return m
	case <-time.After(10 * time.Second):
		cl.t.Fatalf("no frame within 10s")
	}
	return nil
}

// reply waits for the reply to id, collecting pushes that come before it.
func (cl *client) reply(id uint64) (result map[string]any, perr map[string]any, pushes []map[string]any) {
	cl.t.Helper()
	for {
		m := cl.next()
		if v, ok := m["id"]; ok && uint64(v.(float64)) == id {
			r, _ := m["result"].(map[string]any)
			e, _ := m["error"].(map[string]any)
			return r, e, pushes
		}
		pushes = append(pushes, m)
	}
}

// call sends a command and requires success.
func (cl *client) call(cmd map[string]any) map[string]any {
	cl.t.Helper()
	res, perr, _ := cl.reply(cl.send(cmd))
	if perr != nil {
		cl.t.Fatalf("%v: error %v", cmd["op"], perr)
	}
	return res
}

// callErr sends a command and requires an error with code.
func (cl *client) callErr(cmd map[string]any, code int) {
	cl.t.Helper()
	_, perr, _ := cl.reply(cl.send(cmd))
	if perr == nil {
		cl.t.Fatalf("%v: succeeded, want error %d", cmd["op"], code)
	}
	if int(perr["code"].(float64)) != code {
		cl.t.Fatalf("%v: error %v, want code %d", cmd["op"], perr, code)
	}
}

// waitClose waits for the server to close the connection and returns the code.
func (cl *client) waitClose() websocket.CloseError {
	cl.t.Helper()
	for {
		select {
		case _, ok := <-cl.frames:
			if !ok {
				return <-cl.closed
			}
		case <-time.After(10 * time.Second):
			cl.t.Fatalf("connection not closed within 10s")
		}
	}
}

func connectAs(t *testing.T, ts *testServer, user string, channels ...string) *client {
	t.Helper()
	cl := dial(t, ts, nil)
	res := cl.call(map[string]any{"op": "connect", "token": ts.token(t, user, time.Hour, channels...)})
	if res["user"] != user {
		t.Fatalf("connect: user %v, want %s", res["user"], user)
	}
	return cl
}

func num(v any) uint64 { f, _ := v.(float64); return uint64(f) }

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

var _ = fmt.Sprint
