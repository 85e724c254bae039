package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/config"
)

// counter reads a counter (or gauge) of the server's metrics registry.
func (ts *testServer) counter(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := ts.Metrics().Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return total
}

// stalledClient connects a raw client that will not read until the test
// reads from it. (Its receive window stays small while it does not read; a
// smaller SO_RCVBUF would make reading crawl later.)
func stalledClient(t *testing.T, ts *testServer, channel string) *rawConn {
	t.Helper()
	rc := rawDial(t, ts)
	rc.Connect(ts.token(t, "slow", time.Hour, "room:*"))
	rc.Text(fmt.Sprintf(`{"id":2,"op":"subscribe","channel":%q}`, channel))
	if m := rc.ReadJSON(); m["result"] == nil {
		t.Fatalf("subscribe: %v", m)
	}
	return rc
}

// TestSlowConsumerIsolation: a client that stops reading is closed with 4001
// once its queue overflows, while a fast client on the same channel receives
// every publication in order.
func TestSlowConsumerIsolation(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.QueueBytes = 64 << 10; c.Compression = false })
	slow := stalledClient(t, ts, "room:ticks")
	fast := connectAs(t, ts, "fast", "room:*")
	fast.call(map[string]any{"op": "subscribe", "channel": "room:ticks"})

	// The publisher waits for the fast client to receive each publication,
	// so it never outruns the fast client, only the stalled one.
	data := []byte(`{"pad":"` + strings.Repeat("x", 32<<10) + `"}`)
	for n := uint64(1); ts.counter(t, "sori_slow_consumer_disconnects_total") == 0; n++ {
		if n > 5000 {
			t.Fatal("no slow-consumer disconnect after 5000 publications (160 MiB)")
		}
		if _, err := ts.Hub().Publish(context.Background(), "room:ticks", data, ""); err != nil {
			t.Fatal(err)
		}
		m := fast.next()
		for m["push"] == "join" || m["push"] == "leave" {
			m = fast.next()
		}
		if num(m["offset"]) != n {
			t.Fatalf("fast client got %v, want offset %d", m, n)
		}
	}
	// The slow client now reads what was on the wire, then the close frame.
	if code, reason := slow.CloseFrame(); code != 4001 || !strings.Contains(reason, "slow") {
		t.Fatalf("slow client closed with %d %q, want 4001", code, reason)
	}
	fast.call(map[string]any{"op": "ping"})
}

// TestConflatingFeedDropsStaleValues: in a conflating namespace a client that
// stops reading keeps its connection and, when it reads again, gets the latest
// value (offsets may jump, never go back).
func TestConflatingFeedDropsStaleValues(t *testing.T) {
	ts := startServer(t, func(c *config.Config) {
		c.QueueBytes = 64 << 10
		c.Compression = false
		// The reader is stalled on purpose, neither reading nor sending,
		// while the publications are made; on a loaded machine that took
		// up to 52 s (2 busy loops beside the suite). Two real-time limits
		// of the server would end the connection for another reason than
		// the one under test: the 10 s write timeout (the writer is blocked
		// on the full socket) and the idle timeout, 2 ping intervals = 50 s
		// without a frame from the client. Both are made longer than any run.
		c.WriteTimeout = config.Duration(time.Hour)
		c.PingInterval = config.Duration(time.Hour)
	})
	slow := stalledClient(t, ts, "feed:btc")
	pad := strings.Repeat("x", 32<<10)
	// 16 MiB: the socket buffers held about 4 MiB of it here (the sender's
	// is capped by net.ipv4.tcp_wmem, 4 MiB by default; the stalled
	// receiver's does not grow while it does not read), the queue 64 KiB.
	// If all of it fit, the check after the loop says so.
	const total = 500
	for i := 1; i <= total; i++ {
		data := fmt.Sprintf(`{"n":%d,"pad":%q}`, i, pad)
		if _, err := ts.Hub().Publish(context.Background(), "feed:btc", []byte(data), ""); err != nil {
			t.Fatal(err)
		}
	}
	if got := ts.counter(t, "sori_slow_consumer_disconnects_total"); got != 0 {
		t.Fatalf("%v slow-consumer disconnects on a conflating feed", got)
	}
	var last uint64
	received := 0
	for {
		m := slow.ReadJSON()
		off := num(m["offset"])
		if off <= last {
			t.Fatalf("offset %d after %d", off, last)
		}
		last = off
		received++
		if num(m["data"].(map[string]any)["n"]) == total {
			break
		}
	}
	if received >= total {
		t.Fatalf("received all %d values: nothing was conflated, so the test proved nothing", received)
	}
	slow.Text(`{"id":3,"op":"ping"}`)
	if m := slow.ReadJSON(); m["id"] != 3.0 || m["result"] == nil {
		t.Fatalf("ping after catching up: %v", m)
	}
	t.Logf("slow reader got %d of %d values", received, total)
}
