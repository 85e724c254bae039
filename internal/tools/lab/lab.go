package lab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sori-dev/sori/internal/tools/bench"
)

// Config is one lab run. Zero values take the defaults listed.
type Config struct {
	URL          string        // a running server; "" = start one as a child process
	APIKey       string        // the server's API key (mints the clients' tokens); generated for the child
	Readers      int           // N; default 20
	Messages     int           // M; default 100
	Size         int           // K, bytes of each publication's data; default 256
	Rate         float64       // publications per second; default 50
	PollInterval time.Duration // short polling interval; default 500ms
	Drain        time.Duration // wait after the last publication; default 3s + PollInterval
	Transports   []string      // default AllTransports
	// ServerCommand starts the child server; its arguments are followed by
	// serve flags. Default: this executable with "serve".
	ServerCommand []string
	Progress      io.Writer // one line per transport; nil = quiet
}

func (c *Config) setDefaults() error {
	def := func(p *int, d int) {
		if *p <= 0 {
			*p = d
		}
	}
	def(&c.Readers, 20)
	def(&c.Messages, 100)
	def(&c.Size, 256)
	if c.Rate <= 0 {
		c.Rate = 50
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 500 * time.Millisecond
	}
	if c.Drain <= 0 {
		c.Drain = 3*time.Second + c.PollInterval
	}
	if len(c.Transports) == 0 {
		c.Transports = AllTransports
	}
	for _, t := range c.Transports {
		if !contains(AllTransports, t) {
			return fmt.Errorf("lab: unknown transport %q (one of %s)", t, strings.Join(AllTransports, ", "))
		}
	}
	if c.URL == "" && len(c.ServerCommand) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("lab: find own executable: %w", err)
		}
		c.ServerCommand = []string{exe, "serve"}
	}
	c.URL = strings.TrimRight(c.URL, "/")
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Result is one transport's numbers. Per-message figures divide by the
// messages delivered to readers (N × M when nothing is lost) and count every
// client of the run, the publisher included, after setup (open, connect,
// subscribe) is done: they are the steady-state cost.
type Result struct {
	Transport       string  `json:"transport"`
	Delivered       int64   `json:"delivered"`
	Lost            int64   `json:"lost"`
	BytesPerMsg     float64 `json:"bytes_per_msg"` // up + down
	BytesUpPerMsg   float64 `json:"bytes_up_per_msg"`
	BytesDownPerMsg float64 `json:"bytes_down_per_msg"`
	RequestsPerMsg  float64 `json:"http_requests_per_msg"`
	P50             float64 `json:"latency_p50_ms"`
	P99             float64 `json:"latency_p99_ms"`
	Max             float64 `json:"latency_max_ms"`
	ServerCPUPerMsg float64 `json:"server_cpu_us_per_msg"`
	Error           string  `json:"error,omitempty"`
}

// Report is a lab run.
type Report struct {
	Readers      int      `json:"readers"`
	Messages     int      `json:"messages"`
	Size         int      `json:"size"`
	Rate         float64  `json:"rate"`
	PollInterval string   `json:"poll_interval"`
	Server       string   `json:"server"`    // child process or URL
	CPUScope     string   `json:"cpu_scope"` // what the CPU column measures
	Results      []Result `json:"results"`
}

// Run measures every configured transport in turn, against one server.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	rep := &Report{Readers: cfg.Readers, Messages: cfg.Messages, Size: cfg.Size, Rate: cfg.Rate, PollInterval: cfg.PollInterval.String()}
	if cfg.URL == "" {
		stop, err := startChild(ctx, &cfg)
		if err != nil {
			return nil, err
		}
		defer stop()
		rep.Server = "child process " + strings.Join(cfg.ServerCommand, " ")
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "child server listening at %s\n", cfg.URL)
		}
		rep.CPUScope = "the child server process only (process_cpu_seconds_total from its /metrics)"
	} else {
		rep.Server = cfg.URL
		rep.CPUScope = "the whole process at --url (process_cpu_seconds_total); includes the clients if they share it"
	}
	for _, t := range cfg.Transports {
		res := runTransport(ctx, &cfg, t)
		rep.Results = append(rep.Results, res)
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "%-18s delivered %d/%d  %.0f B/msg  %.2f req/msg  p50 %.1fms %s\n", t, res.Delivered,
				int64(cfg.Readers*cfg.Messages), res.BytesPerMsg, res.RequestsPerMsg, res.P50, res.Error)
		}
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
	}
	return rep, nil
}

// startChild runs `sori serve` on a free loopback port with a fresh data dir
// and a generated API key, and returns when it is listening.
func startChild(ctx context.Context, cfg *Config) (stop func(), err error) {
	dir, err := os.MkdirTemp("", "sori-lab-")
	if err != nil {
		return nil, fmt.Errorf("lab: temp dir: %w", err)
	}
	cfg.APIKey = "lab-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	args := append(cfg.ServerCommand[1:len(cfg.ServerCommand):len(cfg.ServerCommand)],
		"--listen", "127.0.0.1:0", "--data", dir, "--api-keys", cfg.APIKey, "--log-format", "json",
		"--compression=true", "--command-rate", "100000", "--command-burst", "100000",
		// Every reader connects from 127.0.0.1, and closed HTTP sessions
		// linger (they count against the per-IP limit) for a while.
		"--max-connections-per-ip", "100000", "--turn=false")
	cmd := exec.Command(cfg.ServerCommand[0], args...)
	dieWithParent(cmd)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("lab: child stderr: %w", err)
	}
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("lab: start server: %w", err)
	}
	stop = func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = os.RemoveAll(dir)
	}
	// The scanner reads stderr to its end (so the child never blocks on a
	// full pipe); its end means the child exited, and then lastLine says why.
	addr := make(chan string, 1)
	exited := make(chan struct{})
	var lastLine string
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "sori listening" {
				select {
				case addr <- line.Addr:
				default:
				}
			}
			lastLine = sc.Text()
		}
	}()
	select {
	case a := <-addr:
		cfg.URL = "http://" + a
		return stop, nil
	case <-exited:
		stop()
		return nil, fmt.Errorf("lab: the child server exited before listening: %s", lastLine)
	case <-time.After(15 * time.Second):
		stop()
		return nil, errors.New("lab: the child server did not report its address within 15s")
	case <-ctx.Done():
		stop()
		return nil, fmt.Errorf("lab: start server: %w", ctx.Err())
	}
}

// runTransport runs the workload over one transport.
func runTransport(ctx context.Context, cfg *Config, kind string) Result {
	res := Result{Transport: kind}
	var cnt counters
	hc, closeIdle := cnt.httpClient(2*cfg.Readers + 4)
	defer closeIdle()
	d := &dialer{base: cfg.URL, http: hc, interval: cfg.PollInterval}
	api := &http.Client{Timeout: 10 * time.Second}
	defer api.CloseIdleConnections()

	var (
		hist      bench.Histogram
		delivered atomic.Int64
		ready     sync.WaitGroup
		clients   []client
	)
	defer func() {
		for _, c := range clients {
			c.close()
		}
	}()
	fail := func(err error) Result { res.Error = err.Error(); return res }
	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for i := range cfg.Readers {
		tok, err := mintToken(setupCtx, api, cfg, "lab-reader-"+strconv.Itoa(i), nil)
		if err != nil {
			return fail(err)
		}
		ready.Add(1)
		var once sync.Once
		onMsg := func(m []byte) {
			if bytes.HasPrefix(m, []byte(`{"push":"pub"`)) {
				if sent, ok := sentAt(m); ok {
					hist.Record(time.Duration(time.Now().UnixNano() - sent))
					delivered.Add(1)
				}
				return
			}
			if bytes.HasPrefix(m, []byte(`{"id":2,`)) {
				once.Do(ready.Done)
			}
		}
		cmds := fmt.Sprintf(`{"id":1,"op":"connect","token":%q}`+"\n"+`{"id":2,"op":"subscribe","channel":"lab"}`, tok)
		c, err := d.open(setupCtx, kind, []byte(cmds), onMsg)
		if err != nil {
			return fail(err)
		}
		clients = append(clients, c)
	}
	if !waitGroup(setupCtx, &ready) {
		return fail(errors.New("lab: readers did not all subscribe within 30s"))
	}
	tok, err := mintToken(setupCtx, api, cfg, "lab-publisher", []string{"lab"})
	if err != nil {
		return fail(err)
	}
	var pubReady sync.WaitGroup
	pubReady.Add(1)
	var pubOnce sync.Once
	pub, err := d.open(setupCtx, kind, []byte(fmt.Sprintf(`{"id":1,"op":"connect","token":%q}`, tok)), func(m []byte) {
		if bytes.HasPrefix(m, []byte(`{"id":1,`)) {
			pubOnce.Do(pubReady.Done)
		}
	})
	if err != nil {
		return fail(err)
	}
	clients = append(clients, pub)
	if !waitGroup(setupCtx, &pubReady) {
		return fail(errors.New("lab: publisher did not connect within 30s"))
	}

	// Steady state from here.
	cpu0, _ := serverCPU(api, cfg.URL)
	up0, down0, req0 := cnt.up.Load(), cnt.down.Load(), cnt.requests.Load()
	pad := strings.Repeat("lorem ipsum dolor sit amet ", cfg.Size/27+1)[:max(cfg.Size-len(`{"t":1234567890123456789,"p":""}`), 0)]
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	next := time.Now()
	for i := range cfg.Messages {
		time.Sleep(time.Until(next))
		next = next.Add(interval)
		cmd := fmt.Sprintf(`{"id":%d,"op":"publish","channel":"lab","data":{"t":%d,"p":%q}}`, i+2, time.Now().UnixNano(), pad)
		if err := pub.send(ctx, []byte(cmd)); err != nil {
			return fail(err)
		}
	}
	want := int64(cfg.Readers * cfg.Messages)
	deadline := time.Now().Add(cfg.Drain)
	for delivered.Load() < want && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	cpu1, cpuErr := serverCPU(api, cfg.URL)
	up, down, reqs := cnt.up.Load()-up0, cnt.down.Load()-down0, cnt.requests.Load()-req0

	res.Delivered = delivered.Load()
	res.Lost = want - res.Delivered
	if n := float64(res.Delivered); n > 0 {
		res.BytesUpPerMsg, res.BytesDownPerMsg = float64(up)/n, float64(down)/n
		res.BytesPerMsg = res.BytesUpPerMsg + res.BytesDownPerMsg
		res.RequestsPerMsg = float64(reqs) / n
		if cpuErr == nil {
			res.ServerCPUPerMsg = (cpu1 - cpu0) / n * 1e6
		}
	}
	res.P50, res.P99, res.Max = ms(hist.Quantile(.5)), ms(hist.Quantile(.99)), ms(hist.Max())
	return res
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func waitGroup(ctx context.Context, wg *sync.WaitGroup) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

var timeKey = []byte(`"t":`)

// sentAt reads the publisher's send time from a pub push.
func sentAt(m []byte) (int64, bool) {
	i := bytes.Index(m, timeKey)
	if i < 0 {
		return 0, false
	}
	rest := m[i+len(timeKey):]
	end := bytes.IndexAny(rest, ",}")
	if end < 0 {
		return 0, false
	}
	v, err := strconv.ParseInt(string(rest[:end]), 10, 64)
	return v, err == nil
}

// mintToken asks the server API for a token (not counted: setup, not transport).
func mintToken(ctx context.Context, api *http.Client, cfg *Config, user string, publish []string) (string, error) {
	body, _ := json.Marshal(map[string]any{"user": user, "ttl": "1h", "publish": publish})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.URL+"/api/token", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "apikey "+cfg.APIKey)
	resp, err := api.Do(req)
	if err != nil {
		return "", fmt.Errorf("lab: mint token: %w", err)
	}
	defer resp.Body.Close()
	var out struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Token == "" {
		return "", fmt.Errorf("lab: mint token: %s (is --api-key right?)", resp.Status)
	}
	return out.Token, nil
}

// serverCPU reads process_cpu_seconds_total from the server's /metrics.
func serverCPU(api *http.Client, base string) (float64, error) {
	resp, err := api.Get(base + "/metrics")
	if err != nil {
		return 0, fmt.Errorf("lab: scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("lab: scrape metrics: %w", err)
	}
	v, ok := bench.ParseMetrics(b, "process_cpu_seconds_total")["process_cpu_seconds_total"]
	if !ok {
		return 0, errors.New("lab: no process_cpu_seconds_total in /metrics")
	}
	return v, nil
}
