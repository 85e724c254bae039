package perf

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestPerfIdleMemory measures the resident memory each idle connection costs
// a separate server process: RSS delta / N after N clients each connected,
// (for Sori) subscribed and received one publication, against a trivial Go
// TCP server holding the same N connections with a goroutine blocked in Read.
func TestPerfIdleMemory(t *testing.T) {
	requirePerf(t)
	n := *perfConns
	var soriPer, goPer, basePer, ratios, goRatios, heapPer, goroutines []float64
	for round := range *perfCount {
		base := idleRound(t, "baseline", n)
		sori := idleRound(t, "sori", n)
		gor := idleRound(t, "sori-goroutine", n)
		soriPer = append(soriPer, sori.perConn)
		goPer = append(goPer, gor.perConn)
		basePer = append(basePer, base.perConn)
		ratios = append(ratios, sori.perConn/base.perConn)
		goRatios = append(goRatios, sori.perConn/gor.perConn)
		heapPer = append(heapPer, sori.heapPerConn)
		goroutines = append(goroutines, sori.goroutinesPerConn)
		t.Logf("round %d: sori %.0f B/conn (heap %.0f B/conn, %.3f goroutines/conn), goroutine reader %.0f B/conn (%.2f goroutines/conn), baseline %.0f B/conn; sori/baseline %.2f, sori/goroutine reader %.2f",
			round+1, sori.perConn, sori.heapPerConn, sori.goroutinesPerConn, gor.perConn, gor.goroutinesPerConn,
			base.perConn, sori.perConn/base.perConn, sori.perConn/gor.perConn)
	}
	t.Logf("RESULT idle memory at %d conns (median of %d): sori %.2f KiB/conn (Go heap %.2f KiB/conn, %.3f goroutines/conn); goroutine reader (-ws-poll=false) %.2f KiB/conn; baseline %.2f KiB/conn; sori/baseline %.2f; sori/goroutine reader %.2f",
		n, *perfCount, median(soriPer)/1024, median(heapPer)/1024, median(goroutines), median(goPer)/1024,
		median(basePer)/1024, median(ratios), median(goRatios))
}

// TestPerfChurn connects and disconnects -perf.churn connections in batches
// of -perf.conns/10 against a separate server process and reports its RSS at
// the end against its RSS after the first batch (the pools, the poller and
// the heap warmed up): the memory of connections that closed comes back.
func TestPerfChurn(t *testing.T) {
	requirePerf(t)
	batch := max(*perfConns/10, 1)
	for _, role := range []string{"sori", "sori-goroutine"} {
		ch := startChild(t, role)
		cycle := func() {
			clients, err := idleConnect(ch.addr, "/ws", "perf:churn", batch)
			if err != nil {
				ch.stop()
				t.Fatal(err)
			}
			for _, c := range clients {
				_ = c.Close()
			}
			waitSessions(t, ch.addr, 0)
		}
		cycle()
		time.Sleep(time.Second)
		rss0, err := rssBytes(ch.cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		var peak int64
		for done := batch; done < *perfChurn; done += batch {
			cycle()
			if r, err := rssBytes(ch.cmd.Process.Pid); err == nil && r > peak {
				peak = r
			}
		}
		time.Sleep(2 * time.Second) // as the idle measurement: let the runtime settle
		rss1, err := rssBytes(ch.cmd.Process.Pid)
		ch.stop()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("RESULT churn %s: %d connect/disconnect cycles in batches of %d: RSS after the first batch %.1f MiB, peak %.1f MiB, at the end %.1f MiB; end/start %.3f",
			role, *perfChurn, batch, float64(rss0)/(1<<20), float64(peak)/(1<<20), float64(rss1)/(1<<20), float64(rss1)/float64(rss0))
		if float64(rss1) > 1.10*float64(rss0) {
			t.Errorf("%s: RSS did not come back within 10%% of its start: %.3f", role, float64(rss1)/float64(rss0))
		}
	}
}

// waitSessions waits until the server's connection gauge shows n.
func waitSessions(t *testing.T, addr string, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		m, err := scrape(addr, connectionsGauge)
		if err == nil && m[connectionsGauge] == float64(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server still has %v connections, want %d (%v)", m[connectionsGauge], n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type idleResult struct {
	perConn           float64 // RSS bytes per connection
	heapPerConn       float64 // Go heap in use per connection (sori only)
	goroutinesPerConn float64
}

func idleRound(t *testing.T, role string, n int) idleResult {
	t.Helper()
	ch := startChild(t, role)
	defer ch.stop()
	path, channel := "", "perf:idle"
	if role != "baseline" {
		path = "/ws"
	}
	// Warm up: one full cycle, so that lazily built state (pools, the
	// channel, HTTP handlers) is not counted per connection.
	warm, err := idleConnect(ch.addr, path, channel, 8)
	if err != nil {
		t.Fatal(err)
	}
	if err := idleMessage(ch.addr, role, channel, warm); err != nil {
		t.Fatal(err)
	}
	for _, c := range warm {
		_ = c.Close()
	}
	time.Sleep(time.Second)
	names := []string{"go_memstats_heap_inuse_bytes", "go_goroutines", "go_memstats_stack_inuse_bytes",
		"go_memstats_heap_idle_bytes", "go_memstats_heap_released_bytes", "go_memstats_sys_bytes"}
	var before map[string]float64
	if role != "baseline" {
		if before, err = scrape(ch.addr, names...); err != nil {
			t.Fatal(err)
		}
	}
	rss0, err := rssBytes(ch.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	clients, err := idleConnect(ch.addr, path, channel, n)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}()
	if err := idleMessage(ch.addr, role, channel, clients); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // let the writers finish and go idle
	rss1, err := rssBytes(ch.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	res := idleResult{perConn: float64(rss1-rss0) / float64(n)}
	ch.saveProfile(t, "heap", "idle-"+role+".heap")
	if role != "baseline" {
		after, err := scrape(ch.addr, names...)
		if err != nil {
			t.Fatal(err)
		}
		res.heapPerConn = (after[names[0]] - before[names[0]]) / float64(n)
		res.goroutinesPerConn = (after[names[1]] - before[names[1]]) / float64(n)
		for _, name := range names[1:] {
			t.Logf("%s %s: %.3f /conn", role, name, (after[name]-before[name])/float64(n))
		}
	}
	return res
}

func idleConnect(addr, path, channel string, n int) ([]*Client, error) {
	return dialMany(addr, path, n, 512, func(int) string { return channel })
}

// idleMessage gets one message to every client: a publication through the
// server API for Sori, an echo for the baseline.
func idleMessage(addr, role, channel string, clients []*Client) error {
	var marker []byte
	if role != "baseline" {
		body := `{"channel":"` + channel + `","data":{"hello":"idle"}}`
		req, _ := http.NewRequest("POST", "http://"+addr+"/api/publish", strings.NewReader(body))
		req.Header.Set("Authorization", "apikey "+perfAPIKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("publish: status %s", resp.Status)
		}
		marker = []byte(`"push":"pub"`)
	} else {
		marker = []byte("hello")
		for _, c := range clients {
			if err := c.Send(marker); err != nil {
				return fmt.Errorf("send: %w", err)
			}
		}
	}
	for i, c := range clients {
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		p, err := c.Until(marker)
		if err != nil {
			return fmt.Errorf("client %d: %w", i, err)
		}
		if !bytes.Contains(p, marker) {
			return fmt.Errorf("client %d: got %q", i, p)
		}
	}
	return nil
}

// connectionsGauge is the server's open WebSocket connections in /metrics.
const connectionsGauge = `sori_connections{transport="websocket"}`
