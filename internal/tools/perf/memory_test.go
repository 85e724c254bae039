package perf

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	perfSoriOnly = flag.Bool("perf.sorionly", false, "idle memory: measure Sori alone, without the baseline and the goroutine reader (to compare two binaries)")
	perfBatch    = flag.Int("perf.batch", 0, "churn: connections open at once in each cycle (0: -perf.conns/10)")
)

// TestPerfIdleMemory measures the resident memory each idle connection costs
// a separate server process: RSS delta / N after N clients each connected,
// (for Sori) subscribed and received one publication, against a trivial Go
// TCP server holding the same N connections with a goroutine blocked in Read.
// The clients are a swarm of child processes (swarm_test.go), so that N may
// exceed one process's open files and one source address's ports.
func TestPerfIdleMemory(t *testing.T) {
	requirePerf(t)
	n := *perfConns
	var soriPer, goPer, basePer, ratios, goRatios, heapPer, goroutines, rampCPU, idleCPU, marginal []float64
	for round := range *perfCount {
		if *perfSoriOnly {
			sori := idleRound(t, "sori", n)
			soriPer = append(soriPer, sori.perConn)
			marginal = append(marginal, sori.marginal)
			heapPer = append(heapPer, sori.heapPerConn)
			rampCPU = append(rampCPU, float64(sori.rampCPUPerConn))
			idleCPU = append(idleCPU, sori.idleCPU)
			continue
		}
		base := idleRound(t, "baseline", n)
		sori := idleRound(t, "sori", n)
		gor := idleRound(t, "sori-goroutine", n)
		soriPer = append(soriPer, sori.perConn)
		goPer = append(goPer, gor.perConn)
		marginal = append(marginal, sori.marginal)
		basePer = append(basePer, base.perConn)
		ratios = append(ratios, sori.perConn/base.perConn)
		goRatios = append(goRatios, sori.perConn/gor.perConn)
		heapPer = append(heapPer, sori.heapPerConn)
		goroutines = append(goroutines, sori.goroutinesPerConn)
		rampCPU = append(rampCPU, float64(sori.rampCPUPerConn))
		idleCPU = append(idleCPU, sori.idleCPU)
		t.Logf("round %d: sori %.0f B/conn (heap %.0f B/conn, %.3f goroutines/conn), goroutine reader %.0f B/conn (%.2f goroutines/conn), baseline %.0f B/conn; sori/baseline %.2f, sori/goroutine reader %.2f",
			round+1, sori.perConn, sori.heapPerConn, sori.goroutinesPerConn, gor.perConn, gor.goroutinesPerConn,
			base.perConn, sori.perConn/base.perConn, sori.perConn/gor.perConn)
	}
	if *perfSoriOnly {
		t.Logf("RESULT idle memory at %d conns (median of %d), sori only: %.2f KiB/conn, %.2f KiB/conn for the second half (Go heap %.2f KiB/conn; server CPU %v/conn to connect, subscribe and get the messages, %.4f of a core idle)",
			n, *perfCount, median(soriPer)/1024, median(marginal)/1024, median(heapPer)/1024, time.Duration(median(rampCPU)), median(idleCPU))
		return
	}
	t.Logf("RESULT idle memory at %d conns (median of %d): sori %.2f KiB/conn, %.2f KiB/conn for the second half (Go heap %.2f KiB/conn, %.3f goroutines/conn; server CPU %v/conn to connect, subscribe and get the messages, %.4f of a core idle); goroutine reader (-ws-poll=false) %.2f KiB/conn; baseline %.2f KiB/conn; sori/baseline %.2f; sori/goroutine reader %.2f",
		n, *perfCount, median(soriPer)/1024, median(marginal)/1024, median(heapPer)/1024, median(goroutines), time.Duration(median(rampCPU)), median(idleCPU),
		median(goPer)/1024, median(basePer)/1024, median(ratios), median(goRatios))
}

// TestPerfChurn connects and disconnects -perf.churn connections in batches
// of -perf.batch (default -perf.conns/10) against a separate server process
// and reports its RSS at the end against its RSS after the first batch (the
// pools, the poller and the heap warmed up): the memory of connections that
// closed comes back.
// The clients are a swarm of child processes, as for TestPerfIdleMemory.
func TestPerfChurn(t *testing.T) {
	requirePerf(t)
	batch := max(*perfConns/10, 1)
	if *perfBatch > 0 {
		batch = *perfBatch
	}
	for _, role := range []string{"sori", "sori-goroutine"} {
		ch := startChild(t, role)
		ch.requireFiles(t, batch)
		sw := startSwarm(t, ch.addr, "/ws", "perf:churn", batch, 0)
		start, err := scrape(ch.addr, "go_goroutines")
		if err != nil {
			t.Fatal(err)
		}
		// Each cycle ends when the server holds no connection and every
		// goroutine they had has ended (events, not a pause).
		cycle := func() {
			if err := sw.dial(batch); err != nil {
				ch.stop()
				t.Fatal(err)
			}
			if err := sw.closeAll(); err != nil {
				t.Fatal(err)
			}
			waitSessions(t, ch.addr, 0)
			waitGoroutines(t, ch.addr, start["go_goroutines"]+idleGoroutines)
		}
		cycle()
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
		rss1, err := rssBytes(ch.cmd.Process.Pid)
		sw.stop()
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

// idleGoroutines is how many goroutines more than before its connections a
// server may run once they are idle: the poller's, and the HTTP
// connections the harness itself scrapes and publishes over.
const idleGoroutines = 4

// waitGoroutines waits until the server runs at most n goroutines.
func waitGoroutines(t *testing.T, addr string, n float64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		m, err := scrape(addr, "go_goroutines")
		if err == nil && m["go_goroutines"] <= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server still runs %v goroutines a minute after the last step, want at most %v (%v)", m["go_goroutines"], n, err)
		}
		time.Sleep(20 * time.Millisecond)
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

// idleCPUWindow is how long idleRound reads the server's CPU while all its
// connections are idle.
const idleCPUWindow = 3 * time.Second

type idleResult struct {
	rampCPUPerConn    time.Duration // server CPU per connection: connect, subscribe, messages
	idleCPU           float64       // server CPU while idle, in cores
	perConn           float64       // RSS bytes per connection
	marginal          float64       // RSS bytes per connection of the second half
	heapPerConn       float64       // Go heap in use per connection (sori only)
	goroutinesPerConn float64
}

func idleRound(t *testing.T, role string, n int) idleResult {
	t.Helper()
	ch := startChild(t, role)
	defer ch.stop()
	ch.requireFiles(t, n)
	path, channel := "", "perf:idle"
	if role != "baseline" {
		path = "/ws"
	}
	// The clients: a swarm of child processes, started before the baseline
	// RSS is read (they are separate processes: only the server's
	// memory is measured).
	sw := startSwarm(t, ch.addr, path, channel, n, 0)
	defer sw.stop()
	// Warm up: one full cycle, so that lazily built state (pools, the
	// channel, HTTP handlers) is not counted per connection.
	if err := sw.dial(8); err != nil {
		t.Fatal(err)
	}
	if err := idleMessage(ch.addr, role, channel, sw); err != nil {
		t.Fatal(err)
	}
	if err := sw.closeAll(); err != nil {
		t.Fatal(err)
	}
	names := []string{"go_memstats_heap_inuse_bytes", "go_goroutines", "go_memstats_stack_inuse_bytes",
		"go_memstats_heap_idle_bytes", "go_memstats_heap_released_bytes", "go_memstats_sys_bytes"}
	var before map[string]float64
	// settle waits until the server is idle after a step: the goroutines of
	// the warm-up's connections have ended, or every writer that delivered
	// the step's publication has (an event: go_goroutines back at the level
	// before the connections, plus the poller, plus one reader per
	// connection without the poller). The echoing baseline has nothing to
	// wait for: each echo is written before its client sees it.
	settle := func(conns int) {}
	if role != "baseline" {
		waitSessions(t, ch.addr, 0)
		var err error
		if before, err = scrape(ch.addr, names...); err != nil {
			t.Fatal(err)
		}
		perConn := 0.0
		if role == "sori-goroutine" {
			perConn = 1
		}
		settle = func(conns int) {
			waitGoroutines(t, ch.addr, before[names[1]]+perConn*float64(conns)+idleGoroutines)
		}
	}
	rss0, err := rssBytes(ch.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	cpu0 := procCPU(ch.cmd.Process.Pid)
	// Two steps, half the connections each, every connection getting a
	// message after each step: the RSS added by the second half is the
	// marginal cost of an idle connection, without fixed costs (at any N
	// the average is this plus the fixed costs / N).
	half := n / 2
	if err := sw.dial(half); err != nil {
		t.Fatal(err)
	}
	if err := idleMessage(ch.addr, role, channel, sw); err != nil {
		t.Fatal(err)
	}
	settle(half)
	rssHalf, err := rssBytes(ch.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.dial(n - half); err != nil {
		t.Fatal(err)
	}
	if err := idleMessage(ch.addr, role, channel, sw); err != nil {
		t.Fatal(err)
	}
	settle(n)
	cpu1 := procCPU(ch.cmd.Process.Pid)
	rss1, err := rssBytes(ch.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	// CPU while nothing happens: the poller's deadline sweeps, timers.
	cpu2, t2 := procCPU(ch.cmd.Process.Pid), time.Now()
	time.Sleep(idleCPUWindow)
	cpu3, t3 := procCPU(ch.cmd.Process.Pid), time.Now()
	res := idleResult{perConn: float64(rss1-rss0) / float64(n), marginal: float64(rss1-rssHalf) / float64(n-half),
		rampCPUPerConn: (cpu1 - cpu0) / time.Duration(n), idleCPU: float64(cpu3-cpu2) / float64(t3.Sub(t2))}
	t.Logf("%s: %d conns: %.0f B/conn RSS (the second %d: %.0f B/conn), %v CPU/conn to connect, subscribe and get two messages, idle %.4f of a core",
		role, n, res.perConn, n-half, res.marginal, res.rampCPUPerConn, res.idleCPU)
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

// idleMessage gets one message to every client of sw: a publication
// through the server API for Sori, an echo for the baseline.
func idleMessage(addr, role, channel string, sw *swarm) error {
	if role == "baseline" {
		return sw.echo("hello")
	}
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
	return sw.await(`"push":"pub"`)
}

// connectionsGauge is the server's open WebSocket connections in /metrics.
const connectionsGauge = `sori_connections{transport="websocket"}`

// requireFiles fails the test when the server child may not open n sockets
// and a few files more: a server at its limit refuses connections (the
// baseline's Accept fails), which no measurement should average in.
func (c *child) requireFiles(t *testing.T, n int) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", c.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			if soft, err := strconv.Atoi(f[0]); err == nil && n+100 > soft {
				t.Fatalf("the server process may open %d files (RLIMIT_NOFILE; raising the hard limit needs CAP_SYS_RESOURCE): %d connections do not fit", soft, n)
			}
			return
		}
	}
}
