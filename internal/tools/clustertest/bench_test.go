package clustertest

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The cluster benchmarks of docs/benchmarks.md, each against a single-node
// baseline measured in the same run. Run with:
//
//	make bench-cluster
//
// They print figures and ratios; they assert only that the workload ran.

func benchOn(t *testing.T) {
	if os.Getenv("SORI_CLUSTER_BENCH") == "" {
		t.Skip("benchmark: set SORI_CLUSTER_BENCH=1 (make bench-cluster)")
	}
}

// cpuTicks returns the user+system CPU time of pid in clock ticks (100/s).
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

func rssKiB(pid int) int64 {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			n, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return n
		}
	}
	return 0
}

func (c *cluster) cpu() int64 {
	var n int64
	for _, nd := range c.nodes {
		n += cpuTicks(nd.cmd.Process.Pid)
	}
	return n
}

func (nd *node) url() string { return "http://" + nd.addr }

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// fanout publishes msgs messages from a publisher on pubNode to subs
// subscribers spread over subNodes, one room, and returns deliveries per
// second, deliveries per CPU-second of all nodes, and the publish→deliver
// latencies.
func fanout(t *testing.T, cl *cluster, pubNode *node, subNodes []*node, subs, msgs int, pace time.Duration) (perSec, perCPU float64, lat []time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run := runs.Add(1)
	owner := cl.signup(fmt.Sprintf("owner%d", run))
	var users []user
	for i := range (subs + 19) / 20 {
		users = append(users, cl.signup(fmt.Sprintf("sub%d-%d", run, i)))
	}
	channel, _ := cl.room(owner, users...)
	var sent sync.Map // text -> time.Time
	var mu sync.Mutex
	var wg sync.WaitGroup
	ready := make(chan struct{}, subs)
	for i := range subs {
		c, err := cl.connectTo(ctx, subNodes[i%len(subNodes)].url(), "ws", users[i%len(users)])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, perr, err := c.call(ctx, map[string]any{"op": "subscribe", "channel": channel}); err != nil || perr != nil {
			t.Fatalf("subscribe: %v %v", err, perr)
		}
		wg.Go(func() {
			ready <- struct{}{}
			var mine []time.Duration
			for got := 0; got < msgs; {
				select {
				case m := <-c.pushes:
					if m.Push != "pub" {
						continue
					}
					got++
					if v, ok := sent.Load(pub{Data: m.Data}.text()); ok {
						mine = append(mine, time.Since(v.(time.Time)))
					}
				case <-ctx.Done():
					return
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	for range subs {
		<-ready
	}
	p, err := cl.connectTo(ctx, pubNode.url(), "ws", owner)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cpu0, t0 := cl.cpu(), time.Now()
	for i := range msgs {
		text := "m" + strconv.Itoa(i)
		sent.Store(text, time.Now())
		if _, perr, err := p.call(ctx, map[string]any{"op": "publish", "channel": channel, "data": map[string]any{"type": "message", "text": text}}); err != nil || perr != nil {
			t.Fatalf("publish: %v %v", err, perr)
		}
		if pace > 0 {
			time.Sleep(pace) // a paced publisher: latency without queueing
		}
	}
	wg.Wait()
	el, cpu := time.Since(t0), cl.cpu()-cpu0
	if ctx.Err() != nil {
		t.Fatal("fan-out did not complete")
	}
	d := float64(subs * msgs)
	return d / el.Seconds(), d / (float64(max(cpu, 1)) / 100), lat
}

var runs atomic.Int64 // makes user names unique across runs on one cluster

// appends runs writers (split over nodes, each user owning a room shared by
// perRoom writers) publishing n messages each, serially, and returns
// acknowledged appends per second.
func appends(t *testing.T, cl *cluster, writers, perRoom, n int) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var chans []string
	var users []user
	for i := range writers / perRoom {
		u := cl.signup(fmt.Sprintf("w%d", i))
		ch, _ := cl.room(u)
		users, chans = append(users, u), append(chans, ch)
	}
	var cs []*client
	for i := range writers {
		c, err := cl.connectTo(ctx, cl.nodes[i%len(cl.nodes)].url(), "ws", users[i/perRoom])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cs = append(cs, c)
	}
	var wg sync.WaitGroup
	t0 := time.Now()
	for i, c := range cs {
		wg.Go(func() {
			for j := range n {
				if _, perr, err := c.call(ctx, map[string]any{"op": "publish", "channel": chans[i/perRoom],
					"data": map[string]any{"type": "message", "text": fmt.Sprintf("a%d-%d", i, j)}}); err != nil || perr != nil {
					t.Errorf("append: %v %v", err, perr)
					return
				}
			}
		})
	}
	wg.Wait()
	return float64(writers*n) / time.Since(t0).Seconds()
}

// idleCost opens conns WebSocket connections to one node, each subscribed
// to its own app: channel, and returns the node's RSS growth per connection.
func idleCost(t *testing.T, cl *cluster, conns int) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	nd := cl.nodes[0]
	pid := nd.cmd.Process.Pid
	tok := func(i int) string {
		out := cl.restTo(nd.url(), "apikey "+cl.apiKey, "POST", "/api/token", map[string]any{"user": fmt.Sprintf("idle%d", i), "ttl": "1h", "channels": []string{"app:*"}})
		return out["token"].(string)
	}
	// Warm up (first connections allocate pools), then measure.
	open := func(from, to int) []*client {
		var cs []*client
		for i := from; i < to; i++ {
			c, err := dial(ctx, nd.url(), "ws")
			if err != nil {
				t.Fatal(err)
			}
			if _, perr, err := c.call(ctx, map[string]any{"op": "connect", "token": tok(i)}); err != nil || perr != nil {
				t.Fatalf("connect: %v %v", err, perr)
			}
			if _, perr, err := c.call(ctx, map[string]any{"op": "subscribe", "channel": fmt.Sprintf("app:idle%d", i)}); err != nil || perr != nil {
				t.Fatalf("subscribe: %v %v", err, perr)
			}
			cs = append(cs, c)
		}
		return cs
	}
	warm := open(0, 50)
	before := rssKiB(pid)
	cs := open(50, 50+conns)
	after := rssKiB(pid)
	for _, c := range append(warm, cs...) {
		c.Close()
	}
	return float64(after-before) * 1024 / float64(conns)
}

func (c *cluster) restTo(base, auth, method, path string, body any) map[string]any {
	c.t.Helper()
	out, code, err := c.tryAt(base, auth, method, path, body)
	if err != nil || code != 200 {
		c.t.Fatalf("%s %s: %v %d %v", method, path, err, code, out)
	}
	return out
}

// hop publishes msgs paced messages from node 1 to a subscriber on node 1
// and one on node 2 and returns both publish→deliver latencies and, per
// message, how much later node 2's subscriber got it than node 1's.
func hop(t *testing.T, cl *cluster, msgs int, pace time.Duration) (local, remote, extra []time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run := runs.Add(1)
	owner, other := cl.signup(fmt.Sprintf("howner%d", run)), cl.signup(fmt.Sprintf("hsub%d", run))
	channel, _ := cl.room(owner, other)
	recv := make([]map[string]time.Time, 2)
	var wg sync.WaitGroup
	for i, nd := range cl.nodes[:2] {
		c, err := cl.connectTo(ctx, nd.url(), "ws", other)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, perr, err := c.call(ctx, map[string]any{"op": "subscribe", "channel": channel}); err != nil || perr != nil {
			t.Fatalf("subscribe: %v %v", err, perr)
		}
		recv[i] = map[string]time.Time{}
		wg.Go(func() {
			for len(recv[i]) < msgs {
				select {
				case m := <-c.pushes:
					if m.Push == "pub" {
						recv[i][pub{Data: m.Data}.text()] = time.Now()
					}
				case <-ctx.Done():
					return
				}
			}
		})
	}
	p, err := cl.connectTo(ctx, cl.nodes[0].url(), "ws", owner)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	sent := map[string]time.Time{}
	for i := range msgs {
		text := "h" + strconv.Itoa(i)
		sent[text] = time.Now()
		if _, perr, err := p.call(ctx, map[string]any{"op": "publish", "channel": channel, "data": map[string]any{"type": "message", "text": text}}); err != nil || perr != nil {
			t.Fatalf("publish: %v %v", err, perr)
		}
		time.Sleep(pace) // a paced publisher: latency without queueing
	}
	wg.Wait()
	for text, at := range sent {
		l, r := recv[0][text].Sub(at), recv[1][text].Sub(at)
		local, remote, extra = append(local, l), append(remote, r), append(extra, r-l)
	}
	return local, remote, extra
}

func TestClusterBench(t *testing.T) {
	benchOn(t)
	const subs, msgs = 120, 200
	t.Log("machine: 2 vCPU shared with seven other sessions' builds and tests; figures are noisy, ratios are the result")

	single := startNodes(t, 1, true, false) // the default: SQLite, no bus
	sFan, sFanCPU, _ := fanout(t, single, single.nodes[0], single.nodes, subs, msgs, 0)

	cl := startCluster(t, 3)
	cFan, cFanCPU, _ := fanout(t, cl, cl.nodes[0], cl.nodes[1:], subs, msgs, 0)
	t.Logf("fan-out, %d subscribers × %d messages: single node (SQLite) %.0f deliveries/s, %.0f per CPU-second; publisher on node 1, subscribers on nodes 2-3: %.0f/s, %.0f per CPU-second; ratio per CPU %.2f",
		subs, msgs, sFan, sFanCPU, cFan, cFanCPU, cFanCPU/sFanCPU)

	// The hop: one paced publisher on node 1, a subscriber on node 1 and
	// one on node 2 receiving the same messages at the same time.
	local, remote, extra := hop(t, startCluster(t, 2), 400, 5*time.Millisecond)
	t.Logf("publish→deliver, paced, same messages: same node p50 %v p99 %v; other node p50 %v p99 %v; per-message extra time on the other node p50 %v p99 %v",
		quantile(local, .5), quantile(local, .99), quantile(remote, .5), quantile(remote, .99), quantile(extra, .5), quantile(extra, .99))

	const writers, perRoom, each = 90, 3, 40
	aSQLite := appends(t, startNodes(t, 1, true, false), writers, perRoom, each)
	aPG1 := appends(t, startNodes(t, 1, true, true), writers, perRoom, each)
	aPG3 := appends(t, startCluster(t, 3), writers, perRoom, each)
	t.Logf("durable appends, %d writers on %d rooms: SQLite single node %.0f/s; PostgreSQL single node %.0f/s; PostgreSQL, 3 nodes writing %.0f/s (%.2f× SQLite)",
		writers, writers/perRoom, aSQLite, aPG1, aPG3, aPG3/aSQLite)

	per := idleCost(t, startNodes(t, 1, true, false), 1000)
	t.Logf("memory per idle WebSocket connection with one subscription: %.0f B", per)
	t.Logf("CPU per delivery: single node %.1f µs, cross-node %.1f µs", 1e6/sFanCPU, 1e6/cFanCPU)
}
