package clustertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/sori-dev/sori/internal/store/postgres/pgtest"
	"github.com/sori-dev/sori/internal/tools/lb"
)

// binary is the sori binary the tests run, built once by TestMain when
// PostgreSQL is available.
var binary string

func TestMain(m *testing.M) {
	code := func() int {
		if os.Getenv(pgtest.EnvDSN) == "" {
			return m.Run() // every cluster test skips
		}
		dir, err := os.MkdirTemp("", "sori-clustertest-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "sori")
		// Without -race: the nodes are the system under test, not this
		// process, and a race build of three servers would double the
		// machine's load.
		build := exec.Command("go", "build", "-o", binary, "github.com/sori-dev/sori/cmd/sori")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "clustertest: building sori:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// cluster is three (or more) sori nodes, one NATS server, one PostgreSQL
// schema and the random balancer in front.
type cluster struct {
	t      testing.TB
	dsn    string
	app    string // the nodes' PostgreSQL application_name: cutPostgres ends their connections only
	nats   *natsserver.Server
	natsMu sync.Mutex // guards nats across restartNATS
	natsOp natsserver.Options
	// natsURL is the NATS URL node nd connects to (default: the server's;
	// a fault-injecting proxy in TestDroppedAndReorderedBusMessages).
	natsURL func(nd *node) string
	// watch > 0: clients ping every watch/4 and give a connection up when
	// a ping is not answered within watch (a stopped node answers
	// nothing); REST requests and dials time out too. 0: no timeouts.
	watch   time.Duration
	hc      *http.Client
	checkLB bool // the balancer health-checks /readyz (option withLBCheck)
	secret  string
	apiKey  string
	nodes   []*node
	lb      *lb.Proxy
	URL     string // the balancer: http://host:port
	extra   []string
	plain   bool // a single node without the bus (baselines): SQLite unless dsn is set
}

// node is one `sori serve` child process.
type node struct {
	id   string
	addr string // 127.0.0.1:port, kept across restarts
	dir  string
	log  string // log file
	cmd  *exec.Cmd
	done chan struct{}
}

func freePort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startCluster starts n nodes with the given extra serve flags. It skips
// the test when PostgreSQL is not available.
func startCluster(t testing.TB, n int, extra ...string) *cluster {
	t.Helper()
	return startNodes(t, n, false, true, extra...)
}

// option changes a cluster before its nodes start.
type option func(*cluster)

// withWatch makes clients give up a connection whose pings go unanswered
// for d (see cluster.watch).
func withWatch(d time.Duration) option {
	return func(c *cluster) { c.watch, c.hc = d, &http.Client{Timeout: 2 * d} }
}

// withLBCheck makes the balancer send no new requests to a node whose
// /readyz does not answer 200 (as a load balancer with health checks).
func withLBCheck() option { return func(c *cluster) { c.checkLB = true } }

// startNodes starts n nodes; plain nodes get no bus (and no PostgreSQL
// unless pg): the single-node baselines of the benchmarks.
func startNodes(t testing.TB, n int, plain, pg bool, extra ...string) *cluster {
	t.Helper()
	return startNodesWith(t, n, plain, pg, extra, nil)
}

func startNodesWith(t testing.TB, n int, plain, pg bool, extra []string, opts []option) *cluster {
	t.Helper()
	pgtest.DSN(t) // skips without PostgreSQL: TestMain built no binary then
	var dsn string
	if pg {
		dsn = pgtest.Schema(t)
	}
	// A fixed port, so that restartNATS brings the server back where the
	// nodes reconnect to.
	port, _ := strconv.Atoi(strings.TrimPrefix(freePort(t), "127.0.0.1:"))
	nopts := natsserver.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir()} // JetStream: the history of app:/feed:/user: channels
	ns := startNATS(t, nopts)
	var b [27]byte
	rand.Read(b[:])
	c := &cluster{t: t, dsn: dsn, nats: ns, natsOp: nopts, secret: hex.EncodeToString(b[:16]), apiKey: hex.EncodeToString(b[16:24]), extra: extra, plain: plain,
		app: "sori-clustertest-" + hex.EncodeToString(b[24:]), hc: http.DefaultClient}
	t.Cleanup(func() {
		c.natsMu.Lock()
		defer c.natsMu.Unlock()
		c.nats.Shutdown()
	})
	for _, o := range opts {
		o(c)
	}
	var addrs []string
	for i := range n {
		nd := &node{id: fmt.Sprintf("n%d", i+1), addr: freePort(t), dir: t.TempDir()}
		nd.log = filepath.Join(nd.dir, "node.log")
		c.nodes = append(c.nodes, nd)
		addrs = append(addrs, nd.addr)
	}
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			c.kill(nd)
		}
		if t.Failed() {
			for _, nd := range c.nodes {
				if b, err := os.ReadFile(nd.log); err == nil {
					lines := strings.Split(strings.TrimSpace(string(b)), "\n")
					t.Logf("last log lines of %s:\n%s", nd.id, strings.Join(lines[max(0, len(lines)-15):], "\n"))
				}
			}
		}
	})
	var wg sync.WaitGroup
	for _, nd := range c.nodes {
		wg.Go(func() { c.start(nd) })
	}
	wg.Wait()
	p, err := lb.New(addrs, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.lb = p
	if c.checkLB {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); p.Check(ctx, "/readyz", 200*time.Millisecond, time.Second) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

// lineWatcher passes writes through to w and closes ready at the first
// line containing marker.
type lineWatcher struct {
	w      io.Writer
	marker []byte
	ready  chan struct{}
	once   sync.Once
	buf    []byte
}

func (l *lineWatcher) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	if bytes.Contains(l.buf, l.marker) {
		l.once.Do(func() { close(l.ready) })
		l.buf = nil
	} else if i := bytes.LastIndexByte(l.buf, '\n'); i >= 0 {
		l.buf = l.buf[i+1:]
	}
	return l.w.Write(p)
}

// start runs nd and returns once it listens.
func (c *cluster) start(nd *node) {
	c.t.Helper()
	args := []string{"serve", "--listen", nd.addr, "--data", nd.dir, "--token-secret", c.secret, "--api-keys", c.apiKey, "--turn=false",
		// Every client comes through the balancer, from 127.0.0.1.
		"--max-connections-per-ip", "100000", "--login-rate", "1000000", "--login-burst", "100000",
		"--max-body-reads-per-ip", "100000"}
	if !c.plain {
		url := c.natsOp.Host + ":" + strconv.Itoa(c.natsOp.Port)
		if c.natsURL != nil {
			url = c.natsURL(nd)
		}
		args = append(args, "--node-id", nd.id, "--postgres", c.dsn+" application_name="+c.app, "--nats", "nats://"+strings.TrimPrefix(url, "nats://"))
	} else if c.dsn != "" {
		args = append(args, "--postgres", c.dsn) // one node on PostgreSQL, no bus
	}
	args = append(args, c.extra...)
	f, err := os.OpenFile(nd.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	w := &lineWatcher{w: f, marker: []byte("sori listening"), ready: make(chan struct{})}
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = f, w
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	nd.cmd, nd.done = cmd, make(chan struct{})
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(exited)
		close(nd.done)
	}()
	select {
	case <-w.ready:
	case <-exited:
		b, _ := os.ReadFile(nd.log)
		c.t.Fatalf("node %s exited at start:\n%s", nd.id, b)
	case <-time.After(60 * time.Second): // only ends a broken test
		c.t.Fatalf("node %s did not start within 60s", nd.id)
	}
}

// kill sends SIGKILL to nd and waits for it to be gone.
func (c *cluster) kill(nd *node) {
	if nd.cmd == nil || nd.cmd.Process == nil {
		return
	}
	_ = nd.cmd.Process.Signal(syscall.SIGKILL)
	<-nd.done
}

// rest calls the REST API through the balancer.
func (c *cluster) rest(token, method, path string, body any, want int) map[string]any {
	c.t.Helper()
	auth := ""
	if token != "" {
		auth = "Bearer " + token
	} else if strings.HasPrefix(path, "/api/") && !strings.HasPrefix(path, "/api/v1/") {
		auth = "apikey " + c.apiKey // the server API
	}
	out, code, err := c.tryAuth(auth, method, path, body)
	if err != nil || code != want {
		c.t.Fatalf("%s %s: %v, status %d (want %d): %v", method, path, err, code, want, out)
	}
	return out
}

func (c *cluster) try(token, method, path string, body any) (map[string]any, int, error) {
	if token != "" {
		token = "Bearer " + token
	}
	return c.tryAuth(token, method, path, body)
}

// tryAuth sends a request through the balancer with auth as its
// Authorization header ("" = none).
func (c *cluster) tryAuth(auth, method, path string, body any) (map[string]any, int, error) {
	return c.tryAt(c.URL, auth, method, path, body)
}

// tryAt sends a request to base (a node or the balancer).
func (c *cluster) tryAt(base, auth, method, path string, body any) (map[string]any, int, error) {
	return c.tryWith(c.hc, base, auth, method, path, body)
}

func (c *cluster) tryWith(hc *http.Client, base, auth, method, path string, body any) (map[string]any, int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out, resp.StatusCode, nil
}

// user is an account with an API token.
type user struct {
	name, token string
}

func (c *cluster) signup(name string) user {
	out := c.rest("", "POST", "/api/v1/auth/signup", map[string]string{"username": name, "password": "password-" + name, "kind": "api"}, http.StatusCreated)
	return user{name: name, token: out["token"].(string)}
}

// connectToken mints a connection token through the balancer, retrying
// while a node dies under the request.
func (c *cluster) connectToken(ctx context.Context, u user) (string, error) {
	for {
		out, code, err := c.try(u.token, "POST", "/api/v1/auth/connect-token", nil)
		if err == nil && code == http.StatusOK {
			return out["token"].(string), nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("connect token: %v %d: %w", err, code, ctx.Err())
		case <-time.After(50 * time.Millisecond): // back off before retrying a failed request
		}
	}
}

var roomSeq atomic.Int64 // room names are unique

// room creates a private room owned by owner with members, returning its
// channel and epoch.
func (c *cluster) room(owner user, members ...user) (channel, epoch string) {
	r := c.rest(owner.token, "POST", "/api/v1/rooms", map[string]any{"name": fmt.Sprintf("room%d", roomSeq.Add(1)), "kind": "private"}, http.StatusCreated)
	id := int64(r["id"].(float64))
	for _, m := range members {
		c.rest(owner.token, "POST", "/api/v1/rooms/"+strconv.FormatInt(id, 10)+"/members", map[string]any{"username": m.name}, http.StatusCreated)
	}
	return r["channel"].(string), r["epoch"].(string)
}

// connections returns the client connections nd holds (its
// sori_connections gauge, every transport), -1 when it does not answer.
func (c *cluster) connections(nd *node) int {
	resp, err := http.Get("http://" + nd.addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "sori_connections{") {
			_, v, _ := strings.Cut(line, " ")
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			n += int(f)
		}
	}
	return n
}

// busiest returns the live node holding the most client connections: the
// one whose death tests the most.
func (c *cluster) busiest() *node {
	var best *node
	most := -1
	for _, nd := range c.nodes {
		if n := c.connections(nd); n > most {
			best, most = nd, n
		}
	}
	return best
}

// startNATS starts an embedded NATS server with opts.
func startNATS(t testing.TB, opts natsserver.Options) *natsserver.Server {
	t.Helper()
	ns, err := natsserver.NewServer(&opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	return ns
}

// stopNATS shuts the NATS server down (JetStream's files stay).
func (c *cluster) stopNATS() {
	c.natsMu.Lock()
	defer c.natsMu.Unlock()
	c.nats.Shutdown()
	c.nats.WaitForShutdown()
}

// startNATSAgain starts the NATS server again on the same port and store.
func (c *cluster) startNATSAgain() {
	c.natsMu.Lock()
	defer c.natsMu.Unlock()
	c.nats = startNATS(c.t, c.natsOp)
}

// signal sends sig to nd's process.
func (c *cluster) signal(nd *node, sig syscall.Signal) {
	c.t.Helper()
	if err := nd.cmd.Process.Signal(sig); err != nil {
		c.t.Fatalf("signal %v to %s: %v", sig, nd.id, err)
	}
}

// cutPostgres ends every PostgreSQL connection of the nodes
// (pg_terminate_backend: to the nodes it is a database restart) and
// returns how many it ended.
func (c *cluster) cutPostgres(ctx context.Context) int {
	c.t.Helper()
	conn, err := pgx.Connect(ctx, pgtest.DSN(c.t))
	if err != nil {
		c.t.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, c.app).Scan(&n); err != nil {
		c.t.Fatalf("terminate the nodes' PostgreSQL connections: %v", err)
	}
	return n
}

// logSize returns the length of nd's log, a mark for waitLog.
func (nd *node) logSize() int64 {
	fi, err := os.Stat(nd.log)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// waitLog waits until nd's log, after byte from, has a line containing
// every one of parts. It polls the file (the child process is seen from
// outside only); ctx bounds a broken test.
func (c *cluster) waitLog(ctx context.Context, nd *node, from int64, parts ...string) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if b, err := os.ReadFile(nd.log); err == nil && int64(len(b)) > from {
		lines:
			for _, line := range strings.Split(string(b[from:]), "\n") {
				for _, p := range parts {
					if !strings.Contains(line, p) {
						continue lines
					}
				}
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s logged no line with %q: %w", nd.id, parts, ctx.Err())
		case <-t.C:
		}
	}
}

// ready reports whether nd's /readyz answers 200 within a second.
func (c *cluster) ready(nd *node) bool {
	hc := http.Client{Timeout: time.Second}
	resp, err := hc.Get(nd.url() + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// waitReady waits until every node's readiness is want.
func (c *cluster) waitReady(ctx context.Context, want bool, nodes ...*node) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		all := true
		for _, nd := range nodes {
			if c.ready(nd) != want {
				all = false
			}
		}
		if all {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nodes not ready=%v: %w", want, ctx.Err())
		case <-t.C:
		}
	}
}

// readFrom returns the file's bytes after offset from.
func readFrom(path string, from int64) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < from {
		return nil, err
	}
	return b[from:], nil
}
