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
	nats   *natsserver.Server
	secret string
	apiKey string
	nodes  []*node
	lb     *lb.Proxy
	URL    string // the balancer: http://host:port
	extra  []string
	plain  bool // a single node without the bus (baselines): SQLite unless dsn is set
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

// startNodes starts n nodes; plain nodes get no bus (and no PostgreSQL
// unless pg): the single-node baselines of the benchmarks.
func startNodes(t testing.TB, n int, plain, pg bool, extra ...string) *cluster {
	t.Helper()
	pgtest.DSN(t) // skips without PostgreSQL: TestMain built no binary then
	var dsn string
	if pg {
		dsn = pgtest.Schema(t)
	}
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir()}) // JetStream: the history of app:/feed:/user: channels
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(ns.Shutdown)
	var b [24]byte
	rand.Read(b[:])
	c := &cluster{t: t, dsn: dsn, nats: ns, secret: hex.EncodeToString(b[:16]), apiKey: hex.EncodeToString(b[16:]), extra: extra, plain: plain}
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
		args = append(args, "--node-id", nd.id, "--postgres", c.dsn, "--nats", c.nats.ClientURL())
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
	out, code, err := c.try(token, method, path, body)
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
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.URL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
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
