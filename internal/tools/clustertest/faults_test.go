package clustertest

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sori-dev/sori/internal/store/postgres/pgtest"
)

// The chaos cases of issue 12 beyond kill -9 (make test-cluster). Each
// runs the writers and readers of runScenario through the fault, lets
// them go on once the cluster is whole again, and judges the result with
// the checker: no acknowledged publication lost, exactly once per reader,
// readers agreeing on offset→payload, contiguous offsets. Each logs what
// the clients saw (docs/operations.md, the failure table).

// SIGSTOP of the busiest node for longer than the cluster's liveness
// timeout (3 s without a heartbeat), then SIGCONT. Clients notice the
// silence by their pings and resume on the other nodes (the balancer's
// health check stops sending new ones to the stopped node); the other
// nodes declare it gone. Woken, it must not hand its clients stale or
// repeated publications nor acknowledge what it cannot commit: the checker
// covers every reader that lands on it afterwards.
//
// Fencing of control: a member with a connection on the stopped node is
// kicked while it is stopped (the kick returns once every live node
// applied it). Woken, the node must end that subscription before handing
// it anything committed after the kick, and refuse the user's posts — on
// the old connection and on a new one made to it at once.
func TestStopANodePastTheLivenessTimeout(t *testing.T) {
	clusterOnly(t)
	const after = 150
	var kicked user
	runScenario(t, scenario{writers: 3, readers: 6, kinds: []string{"ws", "longpoll", "sse"}, writerKinds: []string{"ws", "longpoll"},
		before: 100, after: after, maxBreaks: 3, opts: []option{withWatch(4 * time.Second), withLBCheck()},
		prepare: func(t *testing.T, ctx context.Context, cl *cluster, w *workload) {
			kicked = cl.signup("kicked")
			cl.rest(w.owner.token, "POST", "/api/v1/rooms/"+strings.TrimPrefix(w.channel, "chat:")+"/members", map[string]any{"username": kicked.name}, 201)
		},
		fault: func(t *testing.T, ctx context.Context, cl *cluster, w *workload) {
			victim := cl.busiest()
			// The kicked member's connection: straight to the victim and
			// without a watchdog, so that it is still there when it wakes.
			tok, err := cl.connectToken(ctx, kicked)
			if err != nil {
				t.Fatal(err)
			}
			kc, err := dial(ctx, victim.url(), "ws")
			if err != nil {
				t.Fatal(err)
			}
			defer kc.Close()
			if _, perr, err := kc.call(ctx, map[string]any{"op": "connect", "token": tok}); err != nil || perr != nil {
				t.Fatalf("connect: %v %v", err, perr)
			}
			if _, perr, err := kc.call(ctx, map[string]any{"op": "subscribe", "channel": w.channel}); err != nil || perr != nil {
				t.Fatalf("subscribe: %v %v", err, perr)
			}
			marks := map[*node]int64{}
			for _, nd := range cl.nodes {
				marks[nd] = nd.logSize()
			}
			t.Logf("SIGSTOP %s (%d client connections) after %d acknowledged publications", victim.id, cl.connections(victim), w.hist.AckedCount())
			stopped := time.Now()
			cl.signal(victim, syscall.SIGSTOP)
			for _, nd := range cl.nodes {
				if nd != victim {
					if err := cl.waitLog(ctx, nd, marks[nd], "node gone", "node="+victim.id); err != nil {
						t.Fatal(err)
					}
				}
			}
			t.Logf("the other nodes declared %s gone after %v", victim.id, time.Since(stopped).Round(10*time.Millisecond))
			// Without the clients' timeout: when the node froze inside a
			// group commit, its transaction holds the room's row lock
			// until PostgreSQL ends its idle session (5 s), and the kick
			// waits for that.
			kickStart := time.Now()
			if out, code, err := cl.tryWith(http.DefaultClient, cl.URL, "Bearer "+w.owner.token, "DELETE", "/api/v1/rooms/"+strings.TrimPrefix(w.channel, "chat:")+"/members/"+kicked.name, nil); err != nil || code != 200 {
				t.Fatalf("kick: %v %d %v", err, code, out)
			}
			t.Logf("the kick returned after %v", time.Since(kickStart).Round(10*time.Millisecond))
			// The log's top now: an offset above it was committed after the
			// kick returned. (Not the highest acknowledged offset: the node
			// may have frozen between a commit and its acknowledgement.)
			top := cl.rest("", "POST", "/api/history", map[string]any{"channel": w.channel, "limit": 1}, 200)
			kickTop := uint64(top["offset"].(float64))
			acked := w.hist.AckedCount()
			if err := w.waitAcks(ctx, after); err != nil {
				t.Fatal(err)
			}
			t.Logf("kicked %s; %d publications acknowledged while %s was stopped (clients moved to the others); SIGCONT after %v",
				kicked.name, w.hist.AckedCount()-acked, victim.id, time.Since(stopped).Round(10*time.Millisecond))
			cl.signal(victim, syscall.SIGCONT)
			// At once, a new connection of the kicked user to the woken node.
			nc, err := cl.dialToken(ctx, victim.url(), "ws", tok)
			if err != nil {
				t.Fatalf("a new connection to the woken node: %v", err)
			}
			defer nc.Close()
			if _, perr, err := nc.call(ctx, map[string]any{"op": "subscribe", "channel": w.channel}); err != nil || perr == nil {
				t.Errorf("the woken node let the kicked user subscribe again: %v %v", err, perr)
			}
			if _, perr, err := nc.call(ctx, map[string]any{"op": "publish", "channel": w.channel, "data": map[string]any{"type": "message", "text": "after the kick, new connection"}}); err != nil || perr == nil {
				t.Errorf("the woken node took a post of the kicked user on a new connection: %v %v", err, perr)
			}
			// The old connection: its subscription ends, before anything
			// committed after the kick reaches it.
			var got []uint64
		old:
			for {
				select {
				case m := <-kc.pushes:
					if m.Push == "pub" && m.Channel == w.channel {
						got = append(got, m.Offset)
						if m.Offset > kickTop {
							t.Errorf("the woken node delivered offset %d (committed after the kick, after %d) to the kicked user", m.Offset, kickTop)
						}
					}
					if m.Push == "unsub" && m.Channel == w.channel {
						break old
					}
				case <-kc.closed:
					break old
				case <-ctx.Done():
					t.Fatal("the kicked user's subscription on the woken node never ended")
				}
			}
			if _, perr, err := kc.call(ctx, map[string]any{"op": "publish", "channel": w.channel, "data": map[string]any{"type": "message", "text": "after the kick, old connection"}}); err == nil && perr == nil {
				t.Errorf("the woken node took a post of the kicked user on its old connection")
			}
			t.Logf("woken %s: the kicked user's old connection got %d publications, none committed after the kick, then its subscription ended; subscribe and post refused",
				victim.id, len(got))
			for _, nd := range cl.nodes {
				if nd != victim {
					if err := cl.waitLog(ctx, nd, marks[nd], "node is back", "node="+victim.id); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := cl.waitReady(ctx, true, victim); err != nil {
				t.Fatal(err)
			}
			lines := clusterLines(victim, marks[victim])
			t.Logf("%s is back, ready, with %d client connections; its own log after waking:\n%s", victim.id, cl.connections(victim), lines)
			if strings.Contains(lines, "node gone") {
				t.Errorf("woken, %s declared the nodes that waited for it gone (its own silence is not theirs)", victim.id)
			}
		}})
}

// clusterLines returns nd's log lines after byte from that are about the
// cluster (membership, the bus), at most 20.
func clusterLines(nd *node, from int64) string {
	b, _ := readFrom(nd.log, from)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "cluster") || strings.Contains(line, "NATS") {
			out = append(out, "  "+line)
		}
	}
	if len(out) > 20 {
		out = append(out[:20], "  …")
	}
	return strings.Join(out, "\n")
}

// The NATS server stops under load, past the nodes' liveness timeout, and
// comes back on the same port with the same JetStream files. Chat
// publications go on being committed to PostgreSQL meanwhile; every node
// turns unready (/readyz 503); once the nodes reconnect, what the bus lost
// is repaired from the log.
func TestRestartNATSUnderLoad(t *testing.T) {
	clusterOnly(t)
	runScenario(t, scenario{writers: 3, readers: 6, kinds: []string{"ws", "longpoll", "sse"}, writerKinds: []string{"ws", "longpoll"},
		before: 100, after: 150, maxBreaks: 1, fault: restartNATS})
}

// The same with an app: channel, whose history (and offsets) live in
// JetStream: its publishes fail while NATS is down (the log of record is
// unreachable), and once it is back the offsets go on from where they
// were, in the same epoch, with nothing lost or repeated.
func TestRestartNATSUnderLoadJetStream(t *testing.T) {
	clusterOnly(t)
	runScenario(t, scenario{writers: 3, readers: 6, kinds: []string{"ws", "longpoll", "sse"}, writerKinds: []string{"ws", "longpoll"},
		before: 100, after: 150, maxBreaks: 1, app: true, fault: restartNATS})
}

// restartNATS stops NATS until every node has declared the others gone,
// then starts it again and waits until every node is ready.
func restartNATS(t *testing.T, ctx context.Context, cl *cluster, w *workload) {
	t.Logf("stopping NATS after %d acknowledged publications", w.hist.AckedCount())
	marks := map[*node]int64{}
	for _, nd := range cl.nodes {
		marks[nd] = nd.logSize()
	}
	acked := w.hist.AckedCount()
	cl.stopNATS()
	down := time.Now()
	if err := cl.waitReady(ctx, false, cl.nodes...); err != nil {
		t.Fatal(err)
	}
	t.Logf("every node answers /readyz 503 (%v after the stop)", time.Since(down).Round(10*time.Millisecond))
	// Down past the liveness timeout: every node hears no
	// heartbeat and declares the others gone; publications pile up.
	for _, nd := range cl.nodes {
		if err := cl.waitLog(ctx, nd, marks[nd], "node gone"); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d publications acknowledged while NATS was down (%v, past the nodes' liveness timeout)", w.hist.AckedCount()-acked, time.Since(down).Round(10*time.Millisecond))
	cl.startNATSAgain()
	if err := cl.waitReady(ctx, true, cl.nodes...); err != nil {
		t.Fatal(err)
	}
	t.Logf("NATS back; every node ready again %v after the stop", time.Since(down).Round(10*time.Millisecond))
}

// PostgreSQL drops every connection of the nodes (pg_terminate_backend,
// what a restart does to them) three times while writers keep group
// commits in flight. A publish is acknowledged only once its append
// committed: the checker finds any acknowledged offset that readers do not
// get with the acknowledged payload.
func TestCutPostgresDuringGroupCommit(t *testing.T) {
	clusterOnly(t)
	const after = 150
	runScenario(t, scenario{writers: 4, readers: 6, kinds: []string{"ws", "longpoll", "sse"}, writerKinds: []string{"ws", "longpoll"},
		before: 100, after: after, maxBreaks: 1,
		fault: func(t *testing.T, ctx context.Context, cl *cluster, w *workload) {
			for round := range 3 {
				n := cl.cutPostgres(ctx)
				t.Logf("round %d: ended %d PostgreSQL connections of the nodes after %d acknowledged publications", round+1, n, w.hist.AckedCount())
				if err := w.waitAcks(ctx, after/3); err != nil {
					t.Fatal(err)
				}
			}
		}})
}

// Bus messages (the publications on sori.pub, NATS → node) are dropped and
// swapped by a proxy between each node and NATS: 5% dropped, 5% held back
// behind the next. Receivers see holes and out-of-order offsets and must
// repair from the log, so that readers still get every publication once and
// in order. Faults stop before the final phase, whose publications are
// delivered intact (a lost last publication is found only by the periodic
// position check).
func TestDroppedAndReorderedBusMessages(t *testing.T) {
	clusterOnly(t)
	const after = 150
	var mu sync.Mutex
	proxies := map[string]*busProxy{}
	faulty := func(c *cluster) {
		c.natsURL = func(nd *node) string {
			mu.Lock()
			defer mu.Unlock()
			p := proxies[nd.id]
			if p == nil {
				p = newBusProxy(t, c.natsOp.Host+":"+strconv.Itoa(c.natsOp.Port))
				proxies[nd.id] = p
			}
			return p.addr()
		}
	}
	runScenario(t, scenario{writers: 3, readers: 6, kinds: []string{"ws", "longpoll", "sse"}, writerKinds: []string{"ws", "longpoll"},
		before: 100, after: after, opts: []option{faulty},
		fault: func(t *testing.T, ctx context.Context, cl *cluster, w *workload) {
			for _, p := range proxies {
				p.set(50, 50)
			}
			if err := w.waitAcks(ctx, 3*after); err != nil {
				t.Fatal(err)
			}
			var dropped, swapped, passed int64
			for _, p := range proxies {
				p.set(0, 0)
				dropped, swapped, passed = dropped+p.dropped.Load(), swapped+p.swapped.Load(), passed+p.passed.Load()
			}
			t.Logf("bus faults off: %d publications dropped and %d swapped on the way to the nodes, %d passed", dropped, swapped, passed)
			if dropped == 0 || swapped == 0 {
				t.Fatal("the proxy injected no fault: the case tested nothing")
			}
		}})
}

// busProxy is a TCP proxy between one node and NATS that drops or swaps
// the publications NATS delivers to the node (MSG frames on the sori.pub
// subject); everything else passes untouched, so the NATS protocol stays
// well formed.
type busProxy struct {
	ln     net.Listener
	target string
	// Per mille of sori.pub messages dropped, and held back behind the
	// next one (swapped).
	drop, swap atomic.Int32

	dropped, swapped, passed atomic.Int64
}

func newBusProxy(t testing.TB, target string) *busProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &busProxy{ln: ln, target: target}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go p.serve(c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return p
}

func (p *busProxy) addr() string { return p.ln.Addr().String() }

func (p *busProxy) set(drop, swap int32) { p.drop.Store(drop); p.swap.Store(swap) }

func (p *busProxy) serve(node net.Conn) {
	defer node.Close()
	nats, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer nats.Close()
	go func() {
		_, _ = io.Copy(nats, node) // node → NATS: untouched
		nats.Close()
	}()
	p.relay(nats, node)
}

// relay copies the NATS protocol from src to dst frame by frame, dropping
// or swapping sori.pub messages.
func (p *busProxy) relay(src io.Reader, dst io.Writer) {
	r := bufio.NewReaderSize(src, 64<<10)
	w := bufio.NewWriterSize(dst, 64<<10)
	var held []byte
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		frame := line
		isPub := false
		if bytes.HasPrefix(line, []byte("MSG ")) || bytes.HasPrefix(line, []byte("HMSG ")) {
			f := strings.Fields(string(line))
			n, err := strconv.Atoi(f[len(f)-1]) // MSG: #bytes; HMSG: total bytes
			if err != nil {
				return
			}
			payload := make([]byte, n+2) // and its CRLF
			if _, err := io.ReadFull(r, payload); err != nil {
				return
			}
			frame = append(frame, payload...)
			isPub = f[1] == "sori.pub"
		}
		if isPub {
			x := rand.Int32N(1000)
			switch drop, swap := p.drop.Load(), p.swap.Load(); {
			case x < drop:
				p.dropped.Add(1)
				continue
			case x < drop+swap && held == nil:
				held = frame
				p.swapped.Add(1)
				continue
			}
			p.passed.Add(1)
		}
		if _, err := w.Write(frame); err != nil {
			return
		}
		if isPub && held != nil {
			if _, err := w.Write(held); err != nil {
				return
			}
			held = nil
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

// The PostgreSQL server itself stops under publish load and starts again,
// twice: once with a fast shutdown (it ends every session, aborting their
// transactions, then checkpoints) and once with an immediate one (a crash:
// no checkpoint, the start replays the WAL). Each time it stays down until
// every node has noticed (/readyz 503), then a few seconds more while
// writers keep publishing; the nodes must refuse what they cannot commit
// with error 122 (store unreachable: try again), never 100, acknowledge
// nothing the restarted server does not have, and go on once it is back.
// The server is the one pg_virtualenv started for the test (found with
// pg_lsclusters by the DSN's port).
func TestRestartPostgresDuringGroupCommit(t *testing.T) {
	clusterOnly(t)
	const after = 150
	pg := findPostgres(t)
	w := runScenario(t, scenario{writers: 4, readers: 6, kinds: []string{"ws", "longpoll", "sse"}, writerKinds: []string{"ws", "longpoll"},
		before: 100, after: after, maxBreaks: 1, opts: []option{withLBCheck()},
		fault: func(t *testing.T, ctx context.Context, cl *cluster, w *workload) {
			for _, mode := range []string{"fast", "immediate"} {
				acked := w.hist.AckedCount()
				t.Logf("stopping PostgreSQL (-m %s) after %d acknowledged publications", mode, acked)
				stopAt := time.Now()
				pg.ctl(t, "stop", "-m", mode)
				down, refused, ackedAtStop := time.Now(), w.refusals.Load(), w.hist.AckedCount()
				if err := cl.waitReady(ctx, false, cl.nodes...); err != nil {
					t.Fatal(err)
				}
				noticed := time.Since(down)
				// Down a while longer, so that writers and readers meet it.
				<-time.After(3 * time.Second)
				t.Logf("stop took %v (%d acknowledged meanwhile); every node answered /readyz 503 %v after it; down %v: %d publishes refused, %d acknowledged",
					down.Sub(stopAt).Round(10*time.Millisecond), ackedAtStop-acked, noticed.Round(10*time.Millisecond), time.Since(down).Round(10*time.Millisecond),
					w.refusals.Load()-refused, w.hist.AckedCount()-ackedAtStop)
				startAt := time.Now()
				pg.ctl(t, "start")
				up := time.Now()
				if err := cl.waitReady(ctx, true, cl.nodes...); err != nil {
					t.Fatal(err)
				}
				t.Logf("pg_ctlcluster start took %v; every node ready %v after it returned (%v after the stop)",
					up.Sub(startAt).Round(10*time.Millisecond), time.Since(up).Round(10*time.Millisecond), time.Since(down).Round(10*time.Millisecond))
				if err := w.waitAcks(ctx, after/2); err != nil {
					t.Fatal(err)
				}
				w.mu.Lock()
				t.Logf("publishes refused so far by code: %v; readers' subscribes refused: %v", w.codes, w.subRefused)
				w.mu.Unlock()
			}
		}})
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.codes[122] == 0 {
		t.Errorf("no publish was refused with 122 while PostgreSQL was down (codes %v): the case tested nothing", w.codes)
	}
	if n := w.codes[100]; n > 0 {
		t.Errorf("%d publishes refused with 100 (internal error) while PostgreSQL restarted: a client must hear 122, store unreachable, and retry", n)
	}
}

// pgServer is the test's PostgreSQL server as Debian's postgresql-common
// knows it (pg_virtualenv creates such a cluster).
type pgServer struct{ version, name string }

// findPostgres finds the cluster serving the DSN's port with pg_lsclusters,
// or skips t. A cleanup starts it again if the test left it stopped.
func findPostgres(t *testing.T) pgServer {
	t.Helper()
	cfg, err := pgx.ParseConfig(pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pg_lsclusters", "--no-header").Output()
	if err != nil {
		t.Skipf("pg_lsclusters: %v (run the test inside pg_virtualenv, as make test-cluster does)", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line) // Ver Cluster Port Status Owner Datadir Logfile
		if len(f) >= 4 && f[2] == strconv.Itoa(int(cfg.Port)) {
			pg := pgServer{version: f[0], name: f[1]}
			t.Cleanup(func() {
				if out, _ := exec.Command("pg_lsclusters", "--no-header", pg.version, pg.name).Output(); !strings.Contains(string(out), "online") {
					_ = exec.Command("pg_ctlcluster", pg.version, pg.name, "start").Run()
				}
			})
			return pg
		}
	}
	t.Skipf("no PostgreSQL cluster of pg_lsclusters listens on port %d: cannot restart it", cfg.Port)
	return pgServer{}
}

// ctl runs pg_ctlcluster for the server (stop, start …).
func (p pgServer) ctl(t *testing.T, action string, args ...string) {
	t.Helper()
	cmd := exec.Command("pg_ctlcluster", append([]string{p.version, p.name, action}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pg_ctlcluster %s: %v\n%s", action, err, out)
	}
}
