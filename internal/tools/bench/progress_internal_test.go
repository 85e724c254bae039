package bench

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// TestProgressKeepsTheLastPartialInterval: latencies recorded after the last
// full interval (the drain, where the slowest deliveries arrive) become a
// point of the series, so the chart shows what the headline p99 counts.
func TestProgressKeepsTheLastPartialInterval(t *testing.T) {
	r := &run{cfg: Config{Interval: time.Hour, URL: "http://127.0.0.1:1"}, http: &http.Client{}}
	r.window.Store(new(Histogram))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan []Point)
	go func() { done <- r.progress(ctx, time.Now()) }()
	r.window.Load().Record(250 * time.Millisecond)
	r.delivered.Add(1)
	cancel()
	series := <-done
	if len(series) != 1 || series[0].P99 != 250 {
		t.Fatalf("series %+v, want one point with p99 250 ms", series)
	}
}
