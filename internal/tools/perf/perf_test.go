package perf

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	_ "net/http/pprof" // profiles of child servers, served only with -perf.profile
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/config"
	"github.com/sori-dev/sori/internal/server"
)

// The measurements are slow and need the whole machine, so they run only when
// asked: go test ./internal/tools/perf -run Perf -perf (see docs/benchmarks.md).
var (
	perfOn     = flag.Bool("perf", false, "run the performance measurements (slow)")
	perfConns  = flag.Int("perf.conns", 10000, "idle connections for the memory measurement")
	perfSubs   = flag.Int("perf.subs", 5000, "subscribers for fan-out and latency")
	perfCount  = flag.Int("perf.count", 5, "rounds per measurement; the median is reported")
	perfPubs   = flag.Int("perf.pubs", 200, "publications per fan-out round")
	perfWindow = flag.Int("perf.window", 32, "publications a publisher may run ahead of the slowest delivery")
	perfRooms  = flag.Int("perf.rooms", 500, "channels of the many-channels latency shape")
	perfPace   = flag.Duration("perf.pace", 3*time.Second, "how long each paced latency run publishes")
	perfPad    = flag.Int("perf.pad", 40, "padding bytes in each publication's data")
	perfLoad   = flag.Float64("perf.load", 0.5, "paced publication rate for latency, as a fraction of Sori's saturating rate")
	perfRate   = flag.Float64("perf.rate", 0, "paced publication rate for latency in publications/s (overrides -perf.load)")
	perfShapes = flag.String("perf.shapes", "fanout,rooms", "fan-out shapes to measure: fanout (one channel), rooms (-perf.rooms channels)")
	perfChurn  = flag.Int("perf.churn", 50000, "connect/disconnect cycles of the churn measurement")
	perfProf   = flag.String("perf.profile", "", "directory to write CPU and heap profiles of the servers into")
)

// childEnv names the role of a child process started by a measurement.
const childEnv = "SORI_PERF_CHILD"

const perfAPIKey = "perf-api-key"

func TestMain(m *testing.M) {
	switch role := os.Getenv(childEnv); role {
	case "":
		raiseFileLimit()
		os.Exit(m.Run())
	case swarmRole:
		if err := runSwarmChild(); err != nil {
			fmt.Fprintln(os.Stderr, "swarm child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	default:
		if err := runChild(role); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// wantFiles is the open-file limit a measurement's server asks for: 50,000
// connections and room to spare.
const wantFiles = 1 << 17

// raiseFileLimit lifts the limit on open files: the measurements hold tens
// of thousands of sockets. Root (CAP_SYS_RESOURCE) may raise the hard limit
// to wantFiles; anyone may raise the soft limit to the hard one.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
		return
	}
	if l.Max < wantFiles {
		up := syscall.Rlimit{Cur: wantFiles, Max: wantFiles}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up) == nil {
			return
		}
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// perfConfig is the server configuration every measurement uses: defaults,
// plus an anonymous "perf" namespace without history, limits high enough for
// one client machine, and heartbeats rare enough not to disturb idle
// connections during a measurement.
func perfConfig(dataDir string) config.Config {
	cfg := server.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = dataDir
	cfg.TURNEnabled = false // not under test; port 3478 may be taken
	cfg.LogLevel = "error"
	cfg.AllowAnonymous = true
	cfg.APIKeys = []string{perfAPIKey}
	cfg.TokenSecret = strings.Repeat("p", 32)
	cfg.MaxConnections = 1 << 20
	cfg.MaxConnectionsPerIP = 1 << 20
	cfg.PingInterval = config.Duration(10 * time.Minute)
	cfg.Namespaces = append(cfg.Namespaces, config.Namespace{Name: "perf", Anonymous: true})
	return cfg
}

// runChild serves as a separate process, so that its memory can be measured
// without the clients': "sori" runs the real server, "baseline" the trivial
// TCP server. It prints "ADDR host:port" and serves until stdin closes.
func runChild(role string) error {
	raiseFileLimit()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	done := make(chan struct{})
	var stop func()
	switch role {
	case "sori", "sori-goroutine":
		dir, err := os.MkdirTemp("", "sori-perf-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cfg := perfConfig(dir)
		cfg.WSPoll = role == "sori" // sori-goroutine: each idle reader waits on its goroutine
		srv, err := server.New(cfg, nil)
		if err != nil {
			return err
		}
		go func() { _ = srv.Serve(ln); close(done) }()
		stop = func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
		}
	case "baseline":
		go func() { ServeIdleBaseline(ln); close(done) }()
		stop = func() { _ = ln.Close() }
	default:
		run := childRoles[role] // roles of other measurements (latency_test.go)
		if run == nil {
			return fmt.Errorf("unknown role %q", role)
		}
		if stop, err = run(ln, done); err != nil {
			return err
		}
	}
	if os.Getenv(childEnv+"_PPROF") != "" {
		pl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer pl.Close()
		go func() { _ = http.Serve(pl, nil) }() // net/http/pprof's handlers
		fmt.Printf("PPROF %s\n", pl.Addr())
	}
	fmt.Printf("ADDR %s\n", ln.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	stop()
	<-done
	return nil
}

// child is a server process started by a measurement.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
	pprof string // address of the child's net/http/pprof, when profiling
}

// saveProfile writes the child's profile (e.g. "heap") to the -perf.profile
// directory.
func (c *child) saveProfile(t *testing.T, kind, name string) {
	t.Helper()
	if c.pprof == "" {
		return
	}
	resp, err := http.Get("http://" + c.pprof + "/debug/pprof/" + kind)
	if err != nil {
		t.Logf("profile %s: %v", kind, err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(filepath.Join(*perfProf, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		t.Fatal(err)
	}
}

func startChild(t *testing.T, role string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+role)
	if *perfProf != "" {
		cmd.Env = append(cmd.Env, childEnv+"_PPROF=1")
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s child: %v", role, err)
	}
	c := &child{cmd: cmd, stdin: stdin}
	t.Cleanup(c.stop)
	br := bufio.NewReader(stdout)
	line, err := br.ReadString('\n')
	if rest, ok := strings.CutPrefix(line, "PPROF "); ok {
		c.pprof = strings.TrimSpace(rest)
		line, err = br.ReadString('\n')
	}
	if err != nil || !strings.HasPrefix(line, "ADDR ") {
		t.Fatalf("%s child did not report its address: %q %v", role, line, err)
	}
	c.addr = strings.TrimSpace(line[len("ADDR "):])
	return c
}

func (c *child) stop() {
	_ = c.stdin.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// rssBytes reads VmRSS of process pid from /proc.
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read status of %d: %w", pid, err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for %d", pid)
}

// scrape reads the named unlabelled samples from a server's /metrics.
func scrape(addr string, names ...string) (map[string]float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("get metrics: %w", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && slices.Contains(names, f[0]) {
			v, err := strconv.ParseFloat(f[1], 64)
			if err == nil {
				out[f[0]] = v
			}
		}
	}
	return out, sc.Err()
}

// inProcess is the real server running in the test process.
type inProcess struct {
	srv  *server.Server
	addr string
	done chan struct{}
}

func startInProcess(t testing.TB) *inProcess {
	t.Helper()
	srv, err := server.New(perfConfig(t.TempDir()), nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &inProcess{srv: srv, addr: ln.Addr().String(), done: make(chan struct{})}
	go func() { _ = srv.Serve(ln); close(p.done) }()
	return p
}

func (p *inProcess) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
	<-p.done
}

// subscribeCmd is the one frame a subscriber sends: connect, then subscribe.
func subscribeCmd(channel string) []byte {
	return []byte(`{"id":1,"op":"connect"}` + "\n" + `{"id":2,"op":"subscribe","channel":"` + channel + `"}`)
}

var subscribedMarker = []byte(`"id":2,"result"`)

// dialMany opens n clients with a few dialers in parallel. For WebSocket
// (path != ""), each client subscribes to channelOf(i) and waits for the
// reply.
func dialMany(addr, path string, n, readBytes int, channelOf func(i int) string) ([]*Client, error) {
	return dialManyFrom(addr, path, nil, n, readBytes, channelOf)
}

// dialManyFrom is dialMany from source address ip (nil: any).
func dialManyFrom(addr, path string, ip net.IP, n, readBytes int, channelOf func(i int) string) ([]*Client, error) {
	clients := make([]*Client, n)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := dialOne(addr, path, ip, readBytes, channelOf, i)
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					continue
				}
				clients[i] = c
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if first != nil {
		for _, c := range clients {
			if c != nil {
				_ = c.Close()
			}
		}
		return nil, first
	}
	return clients, nil
}

func dialOne(addr, path string, ip net.IP, readBytes int, channelOf func(i int) string, i int) (*Client, error) {
	c, err := Dial(DialOptions{Addr: addr, Path: path, LocalIP: ip, ReadBytes: readBytes})
	if err != nil {
		return nil, err
	}
	if path == "" {
		return c, nil
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if err := c.Send(subscribeCmd(channelOf(i))); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("send subscribe: %w", err)
	}
	p, err := c.Until([]byte(`"id":2,`))
	if err == nil && !strings.Contains(string(p), string(subscribedMarker)) {
		err = fmt.Errorf("subscribe refused: %s", p)
	}
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func requirePerf(t *testing.T) {
	t.Helper()
	if !*perfOn {
		t.Skip("performance measurement; run with -perf")
	}
}
