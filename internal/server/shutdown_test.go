package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestGracefulShutdown: what is queued for a client is written before the
// close frame, which is 1001 with a reconnect hint.
func TestGracefulShutdown(t *testing.T) {
	ts := startServer(t, nil)
	cl := connectAs(t, ts, "alice")
	cl.call(map[string]any{"op": "subscribe", "channel": "plain"})
	raw := rawDial(t, ts)
	raw.Connect(ts.token(t, "bob", time.Hour))

	const n = 500
	for i := 1; i <= n; i++ {
		if _, err := ts.Hub().Publish(context.Background(), "plain", []byte(fmt.Sprintf(`{"n":%d}`, i)), ""); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for i := 1; i <= n; i++ {
		m, ok := <-cl.frames
		if !ok {
			t.Fatalf("closed after %d of %d queued publications", i-1, n)
		}
		if num(m["offset"]) != uint64(i) {
			t.Fatalf("publication %d has offset %v", i, m["offset"])
		}
	}
	ce := cl.waitClose()
	if ce.Code != 1001 || !strings.Contains(ce.Reason, "reconnect") {
		t.Fatalf("close %v, want 1001 with a reconnect hint", ce)
	}
	if code, reason := raw.CloseFrame(); code != 1001 || !strings.Contains(reason, "reconnect") {
		t.Fatalf("raw client close %d %q", code, reason)
	}
	if ts.Node().Count() != 0 {
		t.Fatalf("%d sessions left after shutdown", ts.Node().Count())
	}
}
