package server_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sori-dev/sori/internal/clock"
	"github.com/sori-dev/sori/internal/config"
	"github.com/sori-dev/sori/internal/server"
)

func TestMessageSizeLimits(t *testing.T) {
	ts := startServer(t, func(c *config.Config) {
		c.MaxMessageSize = 2048
		c.Namespaces = append(c.Namespaces, config.Namespace{Name: "tiny", MaxMessageSize: 100})
	})
	cl := connectAs(t, ts, "alice")
	cl.call(map[string]any{"op": "subscribe", "channel": "tiny:x"})
	cl.call(map[string]any{"op": "publish", "channel": "tiny:x", "data": strings.Repeat("a", 90)})
	cl.callErr(map[string]any{"op": "publish", "channel": "tiny:x", "data": strings.Repeat("a", 200)}, 110)
	cl.call(map[string]any{"op": "ping"}) // still connected

	// A frame over the server's limit closes the connection with 1009.
	cl.send(map[string]any{"op": "ping", "client": strings.Repeat("a", 3000)})
	if ce := cl.waitClose(); ce.Code != websocket.StatusMessageTooBig {
		t.Fatalf("close %v, want 1009", ce)
	}
}

func TestSubscriptionLimit(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.MaxSubscriptions = 2 })
	cl := connectAs(t, ts, "alice")
	cl.call(map[string]any{"op": "subscribe", "channel": "a"})
	cl.call(map[string]any{"op": "subscribe", "channel": "b"})
	cl.callErr(map[string]any{"op": "subscribe", "channel": "c"}, 108)
	cl.call(map[string]any{"op": "unsubscribe", "channel": "a"})
	cl.call(map[string]any{"op": "subscribe", "channel": "c"})
}

func TestCommandRateLimit(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.CommandRate = 0.01; c.CommandBurst = 5 })
	cl := connectAs(t, ts, "alice") // connect takes one token
	// One frame with a batch: no time passes between the commands.
	batch := strings.Repeat(`{"id":99,"op":"ping"}`+"\n", 6)
	cl.sendRaw(batch)
	var codes []float64
	for i := 0; i < 6; i++ {
		m := cl.next()
		if e, ok := m["error"].(map[string]any); ok {
			codes = append(codes, e["code"].(float64))
		} else {
			codes = append(codes, 0)
		}
	}
	want := []float64{0, 0, 0, 0, 109, 109}
	for i := range want {
		if codes[i] != want[i] {
			t.Fatalf("reply codes %v, want %v", codes, want)
		}
	}
	// Persisting after being told closes with 4505.
	cl.sendRaw(batch)
	if ce := cl.waitClose(); ce.Code != 4505 {
		t.Fatalf("close %v, want 4505", ce)
	}
}

func TestConnectionLimits(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*config.Config)
	}{
		{"total", func(c *config.Config) { c.MaxConnections = 2 }},
		{"per IP", func(c *config.Config) { c.MaxConnectionsPerIP = 2 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, tt.mutate)
			a := connectAs(t, ts, "a")
			connectAs(t, ts, "b")
			third := rawDial(t, ts)
			if code := third.CloseCode(); code != 4503 {
				t.Fatalf("third connection closed with %d, want 4503", code)
			}
			// A slot frees when a connection goes.
			_ = a.c.Close(websocket.StatusNormalClosure, "")
			a.waitClose()
			waitFor(t, func() bool { return ts.Node().Count() == 1 })
			connectAs(t, ts, "c")
		})
	}
}

func TestConnectTimeout(t *testing.T) {
	clk := clock.NewFake(time.Now())
	ts := startServer(t, func(c *config.Config) { c.ConnectTimeout = config.Duration(10 * time.Second) }, server.WithClock(clk))
	armed := clk.Pending() // the heartbeat's
	rc := rawDial(t, ts)
	clk.WaitPending(armed) // the connect timer of rc
	clk.Advance(10 * time.Second)
	if code := rc.CloseCode(); code != 4504 {
		t.Fatalf("close %d, want 4504", code)
	}
	// A client that connects in time stays past the timeout.
	cl := connectAs(t, ts, "alice")
	clk.Advance(time.Minute)
	cl.call(map[string]any{"op": "ping"})
}

// TestHandshakeTimeout: a slowloris client that sends its request headers a
// line at a time is cut off by the handshake timeout.
func TestHandshakeTimeout(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.HandshakeTimeout = config.Duration(200 * time.Millisecond) })
	nc, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	cut := make(chan error, 1)
	go func() {
		_ = nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, err := io.Copy(io.Discard, nc)
		cut <- err
	}()
	lines := []string{"GET /ws HTTP/1.1\r\n", "Host: x\r\n", "Upgrade: websocket\r\n", "Connection: Upgrade\r\n"}
	for i := 0; ; i++ {
		select {
		case err := <-cut:
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the server never cut the slow client off")
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
		// Keep trickling headers, never finishing the request.
		if _, err := io.WriteString(nc, lines[i%len(lines)]); err != nil {
			return // the server closed the connection: cut off
		}
	}
}

// TestHeartbeat: a peer that never answers pings and sends nothing is closed
// with 4002; a client whose library answers pings stays connected.
func TestHeartbeat(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.PingInterval = config.Duration(100 * time.Millisecond) })
	rc := rawDial(t, ts)
	rc.Connect(ts.token(t, "silent", time.Hour))
	pings := 0
	for {
		first, p, err := rc.ReadFrame()
		op := first & 0x0f // opcode
		if err != nil {
			t.Fatalf("connection ended without a close frame after %d pings: %v", pings, err)
		}
		if op == 0x9 {
			pings++
			continue
		}
		if op == 0x8 {
			if code := int(p[0])<<8 | int(p[1]); code != 4002 {
				t.Fatalf("close %d, want 4002", code)
			}
			break
		}
	}
	if pings == 0 {
		t.Fatal("closed for silence without a single ping")
	}
	// A client that answers pings stays, ping after ping: on the fake clock
	// the node pings it once per interval, ten intervals in a row (the
	// transport's silence limit, 2 intervals of real time, is 2 minutes here).
	clk := clock.NewFake(time.Now())
	ts = startServer(t, func(c *config.Config) { c.PingInterval = config.Duration(time.Minute) }, server.WithClock(clk))
	rc = rawDial(t, ts)
	rc.Connect(ts.token(t, "alive", time.Hour))
	for i := 0; i < 10; i++ {
		clk.Advance(time.Minute)
		for {
			first, p, err := rc.ReadFrame()
			op := first & 0x0f // opcode
			if err != nil {
				t.Fatalf("interval %d: %v", i, err)
			}
			if op == 0x9 {
				rc.WriteFrame(frameOpts{Op: 0xA}, p)
				break
			}
			if op == 0x8 {
				t.Fatalf("interval %d: closed (%q) although it answered every ping", i, p)
			}
		}
	}
	rc.Text(`{"id":7,"op":"ping"}`)
	if m := rc.ReadJSON(); num(m["id"]) != 7 || m["error"] != nil {
		t.Fatalf("ping after ten intervals: %v", m)
	}
}

// waitFor polls cond until it holds, failing after a generous deadline.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// One rule for history limits, at the level a backend meets it: /api/history
// with limit 0 (or none) returns up to the maximum on every namespace — on a
// durable chat room it returned nothing with ok before.
func TestHistoryLimitZeroMeansMaximum(t *testing.T) {
	ts := startServer(t, nil)
	alice := signup(t, ts.URL, "alice")
	room := alice.call(t, ts, "POST", "/api/v1/rooms", map[string]any{"name": "log", "kind": "public"}, http.StatusCreated)
	id := int64(room["id"].(float64))
	for i := 0; i < 3; i++ {
		alice.call(t, ts, "POST", fmt.Sprintf("/api/v1/rooms/%d/messages", id), map[string]any{"text": fmt.Sprint("m", i)}, http.StatusCreated)
	}
	for _, ch := range []string{room["channel"].(string), "small:x"} {
		if ch == "small:x" {
			for i := 0; i < 3; i++ {
				ts.api(t, "/api/publish", map[string]any{"channel": ch, "data": map[string]int{"n": i}}, http.StatusOK)
			}
		}
		for _, body := range []map[string]any{{"channel": ch, "limit": 0}, {"channel": ch}, {"channel": ch, "limit": 5000}} {
			res := ts.api(t, "/api/history", body, http.StatusOK)
			if pubs, _ := res["publications"].([]any); len(pubs) != 3 {
				t.Errorf("/api/history %v: %d publications, want all 3", body, len(pubs))
			}
		}
		if res := ts.api(t, "/api/history", map[string]any{"channel": ch, "limit": 2}, http.StatusOK); len(res["publications"].([]any)) != 2 {
			t.Errorf("%s limit 2: %v", ch, res)
		}
	}
	// Reading a channel that does not exist creates nothing.
	res := ts.api(t, "/api/history", map[string]any{"channel": "small:never"}, http.StatusOK)
	if pubs, _ := res["publications"].([]any); len(pubs) != 0 || num(res["offset"]) != 0 {
		t.Errorf("history of a channel nobody used: %v", res)
	}
}
