package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/config"
)

// With a shutdown delay, /readyz answers 503 over the network while clients
// are still connected, and only then are they closed with 1001.
func TestShutdownDelayReportsNotReadyFirst(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.ShutdownDelay = config.Duration(time.Hour) })
	cl := connectAs(t, ts, "alice")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ts.Shutdown(ctx) }()

	waitFor(t, func() bool {
		resp, err := http.Get(ts.URL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	// Still draining: the client is connected and served.
	cl.call(map[string]any{"op": "ping"})

	cancel() // the shutdown deadline ends the delay early
	if ce := cl.waitClose(); ce.Code != 1001 {
		t.Fatalf("closed with %d, want 1001", ce.Code)
	}
	<-done
}
