package server_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The attack measurement is slow and wants the machine to itself, so it runs
// only when asked, like internal/tools/perf:
//
//	go test ./internal/server -run TestOneUserMemoryAttack -perf -v
var perfOn = flag.Bool("perf", false, "run the slow measurements (one user's memory attack)")

// rssBytes reads this process's resident set size (Linux).
func rssBytes(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Skip("no VmRSS")
	return 0
}

// canaryLatency publishes n times through the server API path (the hub) on a
// channel the canary client is subscribed to and returns the median and the
// 99th percentile publish→deliver latency.
func canaryLatency(t *testing.T, ts *testServer, canary *client, n int) (p50, p99 time.Duration) {
	t.Helper()
	lat := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		if _, err := ts.Hub().Publish(context.Background(), "room:canary", []byte(`{"canary":true}`), ""); err != nil {
			t.Fatal(err)
		}
		canary.nextPub("room:canary")
		lat = append(lat, time.Since(start))
		time.Sleep(5 * time.Millisecond) // a paced stream, not a saturating one
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100]
}

// TestOneUserMemoryAttack: one logged-in user attacks for 10 s with every
// cheap command — history, presence, subscribe and unsubscribe of fresh
// channel names, publishes of the largest data into fresh channels, in
// batches, over as many connections as they may open, reconnecting all the
// time. The server's RSS may not grow by more than 64 MiB, and a canary
// client's publish→deliver latency is reported against its baseline (issue
// 9 asks for at most 2×).
func TestOneUserMemoryAttack(t *testing.T) {
	if !*perfOn {
		t.Skip("a measurement: run with -perf")
	}
	ts := startServer(t, nil)
	canary := connectAs(t, ts, "canary", "room:*")
	canary.call(map[string]any{"op": "subscribe", "channel": "room:canary"})
	canaryLatency(t, ts, canary, 50) // warm up
	base50, base99 := canaryLatency(t, ts, canary, 300)

	runtime.GC()
	debug.FreeOSMemory()
	before := rssBytes(t)

	tok := ts.token(t, "mallory", time.Hour, "room:*")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var sent, peak atomic.Int64
	var seq atomic.Int64
	pad := strings.Repeat("x", 60<<10) // just under the 64 KiB message limit
	attacker := func() {
		for ctx.Err() == nil {
			c, _, err := websocket.Dial(ctx, ts.WSURL, &websocket.DialOptions{Subprotocols: []string{"sori.v1"}})
			if err != nil {
				continue // over the per-user connection limit, or the test ends
			}
			c.SetReadLimit(-1)
			go func() { // read and drop everything, so the server is never slowed by us
				for {
					if _, _, err := c.Read(context.Background()); err != nil {
						return
					}
				}
			}()
			_ = c.Write(ctx, websocket.MessageText, []byte(`{"id":1,"op":"connect","token":"`+tok+`"}`))
			for round := 0; round < 50 && ctx.Err() == nil; round++ {
				var b strings.Builder
				for k := 0; k < 40; k++ {
					n := seq.Add(1)
					fmt.Fprintf(&b, `{"id":%d,"op":"history","channel":"room:h%d"}`+"\n", n, n)
					fmt.Fprintf(&b, `{"id":%d,"op":"presence","channel":"room:p%d"}`+"\n", n, n)
					fmt.Fprintf(&b, `{"id":%d,"op":"history","channel":"user:mallory#%d"}`+"\n", n, n)
					fmt.Fprintf(&b, `{"id":%d,"op":"subscribe","channel":"room:s%d"}`+"\n", n, n)
					fmt.Fprintf(&b, `{"id":%d,"op":"unsubscribe","channel":"room:s%d"}`+"\n", n, n)
				}
				if err := c.Write(ctx, websocket.MessageText, []byte(strings.TrimSuffix(b.String(), "\n"))); err != nil {
					break
				}
				n := seq.Add(1)
				pub := fmt.Sprintf(`{"id":%d,"op":"subscribe","channel":"room:big%d"}`+"\n"+`{"id":%d,"op":"publish","channel":"room:big%d","data":{"p":%q}}`, n, n, n+1, n, pad[:60<<10-200])
				if err := c.Write(ctx, websocket.MessageText, []byte(pub)); err != nil {
					break
				}
				sent.Add(int64(b.Len() + len(pub)))
			}
			_ = c.CloseNow()
		}
	}
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ { // more connections than one user may hold
		wg.Add(1)
		go func() { defer wg.Done(); attacker() }()
	}
	// The canary keeps measuring during the attack; RSS is sampled meanwhile.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if r := rssBytes(t); r > peak.Load() {
				peak.Store(r)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	att50, att99 := canaryLatency(t, ts, canary, 300)
	wg.Wait()
	if r := rssBytes(t); r > peak.Load() {
		peak.Store(r)
	}
	grew := peak.Load() - before
	t.Logf("attacker sent %d MiB; RSS %d MiB -> peak %d MiB (+%d MiB, %.1f%% of what was sent)",
		sent.Load()>>20, before>>20, peak.Load()>>20, grew>>20, 100*float64(grew)/float64(max(sent.Load(), 1)))
	t.Logf("canary publish->deliver: baseline p50 %v p99 %v; under attack p50 %v p99 %v (ratio p50 %.2f, p99 %.2f)",
		base50, base99, att50, att99, float64(att50)/float64(base50), float64(att99)/float64(base99))
	if grew > 64<<20 {
		t.Errorf("one user raised RSS by %d MiB, over the 64 MiB bar", grew>>20)
	}
}
