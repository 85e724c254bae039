package httpstream_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/session"
	"github.com/sori-dev/sori/internal/transport/httpstream"
)

// TestSSEHeartbeatsWhileDelivering runs the node's heartbeats (conn.Ping,
// from the heartbeat goroutine) against an SSE stream that is busy delivering
// publications (conn.next, on the request's goroutine): every publication
// arrives once and in order, heartbeat comment lines arrive between events,
// and under -race the two sides share the conn's state only under its lock.
func TestSSEHeartbeatsWhileDelivering(t *testing.T) {
	e := start(t, session.Config{PingInterval: 20 * time.Millisecond}, httpstream.Options{SessionTimeout: time.Minute})
	sid := e.open("sse", fmt.Sprintf(`{"id":1,"op":"connect","token":%q}`+"\n"+`{"id":2,"op":"subscribe","channel":"beat"}`, e.token("alice")))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+httpstream.PathSSE+"?session="+sid, nil)
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()

	const n = 300
	go func() {
		for i := 1; i <= n; i++ {
			if _, err := e.hub.Publish(context.Background(), "beat", []byte(fmt.Sprintf(`{"n":%d}`, i)), ""); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	br := bufio.NewReader(resp.Body)
	next, heartbeats := 1, 0
	deadline := time.Now().Add(10 * time.Second)
	for next <= n || heartbeats == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: publications up to %d of %d, %d heartbeats", next-1, n, heartbeats)
		}
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == ":":
			heartbeats++
		case strings.HasPrefix(line, "data: "):
			var m struct {
				Push string
				Data struct{ N int }
			}
			if err := json.Unmarshal([]byte(line[len("data: "):]), &m); err != nil {
				t.Fatalf("event data %q: %v", line, err)
			}
			if m.Push != "pub" {
				continue // the connect and subscribe replies
			}
			if m.Data.N != next {
				t.Fatalf("publication %d arrived where %d was due", m.Data.N, next)
			}
			next++
		}
	}
}
