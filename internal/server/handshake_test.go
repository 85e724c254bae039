package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sori-dev/sori/internal/config"
)

func TestOrigins(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.AllowedOrigins = []string{"https://app.example.com"} })
	host := strings.TrimPrefix(ts.URL, "http://")
	tests := []struct {
		origin string
		want   int
	}{
		{"", http.StatusSwitchingProtocols}, // non-browser client
		{"http://" + host, http.StatusSwitchingProtocols},
		{"https://app.example.com", http.StatusSwitchingProtocols},
		{"HTTPS://APP.EXAMPLE.COM", http.StatusSwitchingProtocols},
		{"https://evil.example", http.StatusForbidden},
		{"https://app.example.com.evil.example", http.StatusForbidden},
		{"http://" + host + ".evil.example", http.StatusForbidden},
		{"null", http.StatusForbidden},
		{"::not a url", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.origin, func(t *testing.T) {
			_, resp := rawHandshake(t, ts, nil, "Origin: "+tt.origin)
			if resp.StatusCode != tt.want {
				t.Fatalf("Origin %q: status %d, want %d", tt.origin, resp.StatusCode, tt.want)
			}
		})
	}
	// A real client library with a foreign Origin is refused too.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, ts.WSURL, &websocket.DialOptions{
		Subprotocols: []string{"sori.v1"}, HTTPHeader: http.Header{"Origin": {"https://evil.example"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("dial with a foreign origin: %v %v", err, resp)
	}
}

func TestMalformedHandshakes(t *testing.T) {
	ts := startServer(t, nil)
	tests := []struct {
		name  string
		extra []string
	}{
		{"no upgrade header", []string{"Upgrade:"}},
		{"wrong upgrade", []string{"Upgrade: h2c"}},
		{"no key", []string{"Sec-WebSocket-Key:"}},
		{"short key", []string{"Sec-WebSocket-Key: c2hvcnQ="}},
		{"no version", []string{"Sec-WebSocket-Version:"}},
		{"no connection upgrade", []string{"Connection: keep-alive"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, resp := rawHandshake(t, ts, nil, tt.extra...)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", resp.StatusCode)
			}
		})
	}
	// An unsupported version gets 426 with the version we speak (RFC 6455 §4.4).
	_, resp := rawHandshake(t, ts, nil, "Sec-WebSocket-Version: 8")
	if resp.StatusCode != http.StatusUpgradeRequired || resp.Header.Get("Sec-WebSocket-Version") != "13" {
		t.Fatalf("version 8: status %d, version %q; want 426 and 13", resp.StatusCode, resp.Header.Get("Sec-WebSocket-Version"))
	}
	// A plain GET gets 400 as well, and other methods are not routed here.
	resp, err := http.Get(ts.URL + "/ws")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("plain GET /ws: %d, want 400", resp.StatusCode)
	}
	resp, err = http.Post(ts.URL+"/ws", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /ws: %d, want 405", resp.StatusCode)
	}
	// The server still serves.
	connectAs(t, ts, "alice").call(map[string]any{"op": "ping"})
}

func TestPermessageDeflate(t *testing.T) {
	for name, mode := range map[string]websocket.CompressionMode{"client no context takeover": websocket.CompressionNoContextTakeover, "client context takeover": websocket.CompressionContextTakeover} {
		t.Run(name, func(t *testing.T) {
			ts := startServer(t, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, resp, err := websocket.Dial(ctx, ts.WSURL, &websocket.DialOptions{
				Subprotocols: []string{"sori.v1"}, CompressionMode: mode, CompressionThreshold: 64})
			if err != nil {
				t.Fatal(err)
			}
			ext := resp.Header.Get("Sec-WebSocket-Extensions")
			if !strings.Contains(ext, "permessage-deflate") || !strings.Contains(ext, "server_no_context_takeover") {
				t.Fatalf("extensions %q: deflate not negotiated", ext)
			}
			cl := wrap(t, c)
			cl.call(map[string]any{"op": "connect", "token": ts.token(t, "alice", time.Hour)})
			cl.call(map[string]any{"op": "subscribe", "channel": "plain"})
			// Large enough that both sides compress: the client's frame
			// arrives compressed and the push goes out compressed.
			big := strings.Repeat("compress me please ", 500)
			for i := 0; i < 3; i++ { // several messages: no context leaks between them
				res, perr, pushes := cl.reply(cl.send(map[string]any{"op": "publish", "channel": "plain", "data": map[string]any{"text": big, "i": i}}))
				if perr != nil || res == nil {
					t.Fatalf("publish: %v", perr)
				}
				var pub map[string]any
				if len(pushes) > 0 { // the push may come before or after the reply
					pub = pushes[0]
				} else {
					pub = cl.next()
				}
				d := pub["data"].(map[string]any)
				if d["text"] != big || d["i"] != float64(i) {
					t.Fatalf("round trip %d changed the data", i)
				}
			}
			if wrote := ts.counter(t, "sori_bytes_out_total"); wrote > 3*float64(len(big)) {
				t.Fatalf("server wrote %v bytes for three %d-byte publications: not compressed", wrote, len(big))
			}
		})
	}
}

// wrap turns a dialled coder/websocket connection into a test client.
func wrap(t *testing.T, c *websocket.Conn) *client {
	c.SetReadLimit(8 << 20)
	cl := &client{t: t, c: c, frames: make(chan map[string]any, 10000), closed: make(chan websocket.CloseError, 1)}
	go cl.readLoop()
	t.Cleanup(func() { _ = c.CloseNow() })
	return cl
}
