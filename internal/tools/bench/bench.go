package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Patterns of subscription.
const (
	PatternRoom     = "room"     // every connection in one channel
	PatternRooms    = "rooms"    // connections in channels of RoomSize
	PatternPersonal = "personal" // one user:<id> channel per connection
)

// Config is one bench run. Zero values take the defaults listed.
type Config struct {
	URL         string        // server base URL; default http://127.0.0.1:7700
	APIKey      string        // server API key: mints tokens and publishes; required
	Conns       int           // connections to open; default 100
	MaxConns    int           // refuse Conns above this; default 10000
	Ramp        float64       // connections opened per second; default 1000
	SourceIPs   int           // spread connections over 127.0.0.1..127.0.0.N (loopback targets only); default 4
	Pattern     string        // room, rooms or personal; default room
	RoomSize    int           // connections per room for "rooms"; default 10
	Rate        float64       // publications per second, in total; default 100
	Size        int           // bytes of each publication's data; default 128
	Duration    time.Duration // how long to publish; default 10s
	MaxDuration time.Duration // refuse Duration above this; default 10m
	Drain       time.Duration // wait after the last publication for deliveries; default 2s
	Publishers  int           // concurrent API publishers; default 4
	AllowRemote bool          // allow a non-loopback target
	Compression bool          // offer permessage-deflate (Sori's protocol)
	// Protocol is the server's protocol: sori (default), centrifugo, plain
	// or socketio (proto.go), so that peers get the same workload.
	Protocol string

	// ServerPID, when set, is the server's process on this machine: its CPU
	// comes from /proc/<pid>/stat (any server, not only Sori's /metrics),
	// and ServerCPUCore pins it. Pinning the server to one core and the load
	// generator (CPUCore) to another keeps the two from competing for a
	// core and makes CPU per delivery comparable between runs and servers.
	ServerPID     int
	PinServer     bool // pin the server's threads to ServerCPUCore
	ServerCPUCore int
	PinSelf       bool // pin this process's threads to CPUCore
	CPUCore       int

	// FindRate searches the saturating publication rate before the measured
	// run (saturate.go): the offered rate doubles from Rate for StepDuration
	// each until a step does not keep up, then three bisection steps. The
	// measured run then offers Load × that rate for Duration.
	FindRate     bool
	StepDuration time.Duration // default 2s
	Load         float64       // share of the saturating rate for the measured run; default 0.5

	// RxClock is the clock a delivery's receive time is read from:
	// RxClockKernel (the default on Linux) or RxClockApp. See RxClockKernel.
	RxClock string

	// Thresholds: a run that misses one returns ErrThreshold.
	MinDeliveries float64       // deliveries per second at least; 0 = no check
	MaxP99        time.Duration // delivery latency p99 at most; 0 = no check
	MaxErrors     int           // errors + disconnects at most; negative = no check

	Progress io.Writer     // live progress line; nil = none
	Interval time.Duration // progress and series interval; default 1s
}

func (c *Config) setDefaults() {
	if c.URL == "" {
		c.URL = "http://127.0.0.1:7700"
	}
	c.URL = strings.TrimRight(c.URL, "/")
	def := func(p *int, d int) {
		if *p <= 0 {
			*p = d
		}
	}
	def(&c.Conns, 100)
	def(&c.MaxConns, 10000)
	def(&c.SourceIPs, 4)
	def(&c.RoomSize, 10)
	def(&c.Size, 128)
	def(&c.Publishers, 4)
	if c.Pattern == "" {
		c.Pattern = PatternRoom
	}
	if c.Ramp <= 0 {
		c.Ramp = 1000
	}
	if c.Rate <= 0 {
		c.Rate = 100
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.MaxDuration <= 0 {
		c.MaxDuration = 10 * time.Minute
	}
	if c.Drain <= 0 {
		c.Drain = 2 * time.Second
	}
	if c.StepDuration <= 0 {
		c.StepDuration = 2 * time.Second
	}
	if c.Load <= 0 {
		c.Load = 0.5
	}
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.RxClock == "" {
		c.RxClock = RxClockKernel
	}
}

// Receive clocks (Config.RxClock).
const (
	// RxClockKernel takes each delivery's receive time from the kernel
	// (SO_TIMESTAMPNS, read with recvmsg): when the data reached the load
	// generator's socket. The latency then excludes the load generator's own
	// scheduling and parsing, which dominate once its core is saturated
	// (1,000 readers on one core), and is the same measure for every server.
	// Where the kernel gives no stamp (not Linux, --compression's library
	// client) the application's clock is used; Report.RxClock says which.
	RxClockKernel = "kernel"
	// RxClockApp takes the time when the client's goroutine has parsed the
	// frame (time.Now): the latency a client application would see,
	// including the load generator's own queueing.
	RxClockApp = "app"
)

// ErrThreshold is returned (wrapped) when a run misses a threshold.
var ErrThreshold = errors.New("bench: threshold not met")

// validate checks bounds and the target.
func (c *Config) validate() (loopback bool, err error) {
	if c.Conns > c.MaxConns {
		return false, fmt.Errorf("bench: --conns %d is above --max-conns %d", c.Conns, c.MaxConns)
	}
	if c.Duration > c.MaxDuration {
		return false, fmt.Errorf("bench: --duration %v is above --max-duration %v", c.Duration, c.MaxDuration)
	}
	switch c.Pattern {
	case PatternRoom, PatternRooms, PatternPersonal:
	default:
		return false, fmt.Errorf("bench: unknown pattern %q (room, rooms or personal)", c.Pattern)
	}
	if c.RxClock != RxClockKernel && c.RxClock != RxClockApp {
		return false, fmt.Errorf("bench: unknown receive clock %q (kernel or app)", c.RxClock)
	}
	if c.APIKey == "" {
		return false, errors.New("bench: --api-key is required (it mints tokens and publishes)")
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false, fmt.Errorf("bench: --url %q must be http(s)://host:port", c.URL)
	}
	loopback, err = isLoopback(u.Hostname())
	if err != nil {
		return false, err
	}
	if !loopback && !c.AllowRemote {
		return false, fmt.Errorf("bench: %s is not a loopback address; pass --allow-remote to load a server you run elsewhere", u.Hostname())
	}
	return loopback, nil
}

func isLoopback(host string) (bool, error) {
	if host == "localhost" {
		return true, nil
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return false, fmt.Errorf("bench: resolve %s: %w", host, err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return false, nil
		}
	}
	return len(ips) > 0, nil
}

// Point is one interval of the run's time series.
type Point struct {
	T             float64 `json:"t_s"` // seconds since the start of the ramp
	Conns         int64   `json:"conns"`
	DeliveriesSec float64 `json:"deliveries_per_s"`
	P50           float64 `json:"p50_ms"`
	P99           float64 `json:"p99_ms"`
	ServerRSS     float64 `json:"server_rss_bytes,omitempty"`
}

// Report is a run's result.
type Report struct {
	Config struct {
		URL, Pattern          string
		Conns, RoomSize, Size int
		Rate                  float64
		Duration              string
		SourceIPs             int
		Compression           bool
		ServerPID             int `json:",omitempty"`
		ServerCPUCore         int // -1: not pinned
		CPUCore               int // -1: not pinned
	} `json:"config"`
	RampSeconds     float64  `json:"ramp_s"`
	Connected       int64    `json:"connected"`
	Published       int64    `json:"published"`
	Expected        int64    `json:"expected_deliveries"`
	Delivered       int64    `json:"delivered"`
	DeliveriesSec   float64  `json:"deliveries_per_s"`
	Latency         Latency  `json:"latency"`
	Errors          int64    `json:"errors"`
	Disconnects     int64    `json:"disconnects"`
	FirstError      string   `json:"first_error,omitempty"`
	ServerCPU       float64  `json:"server_cpu_s"` // server CPU seconds during the publish phase and the drain after it
	ServerCPUPerDel float64  `json:"server_cpu_us_per_delivery"`
	ServerRSS       float64  `json:"server_rss_bytes"` // at the end of the publish phase
	ServerRSSStart  float64  `json:"server_rss_start_bytes"`
	Series          []Point  `json:"series"`
	SaturatingRate  float64  `json:"saturating_rate,omitempty"` // with FindRate: publications/s; the run offered Load × this
	Steps           []Step   `json:"rate_steps,omitempty"`
	Failed          []string `json:"failed_thresholds,omitempty"`
	// RxClock is the clock the latencies were read with: "kernel", "app",
	// or "mixed" when only some connections had kernel receive times.
	RxClock string `json:"rx_clock"`
	// ClientCPU is the load generator's own CPU seconds over the same window
	// as ServerCPU, and ClientCPUShare that as a share of one core over the
	// window's wall time: near 1 with the load generator pinned to one core
	// (--cpu), the client is the bound, and only kernel receive times
	// (RxClock "kernel") still measure the server.
	ClientCPU      float64 `json:"client_cpu_s"`
	ClientCPUShare float64 `json:"client_cpu_share"`
	// SaturationBound is, with FindRate, what bounded the rate found
	// (BoundServer, BoundClient, BoundContention; "" when the CPU shares of
	// the deciding step do not say): see saturationBound.
	SaturationBound string `json:"saturation_bound,omitempty"`
}

// run is the state of one bench run.
type run struct {
	cfg       Config
	http      *http.Client
	loopback  bool
	hist      atomic.Pointer[Histogram] // the current phase's (a step of FindRate, or the measured run)
	window    atomic.Pointer[Histogram]
	delivered atomic.Int64
	errors    atomic.Int64
	discs     atomic.Int64
	conns     atomic.Int64
	rxKernel  atomic.Int64 // connections whose receive times are the kernel's
	published atomic.Int64
	expected  atomic.Int64
	stopping  atomic.Bool
	errOnce   sync.Once
	firstErr  string
	proto     *protocol
	channels  []string // subscribed channels
	subs      []int64  // subscribers per channel (after the ramp)
}

func (r *run) fail(err error) {
	r.errors.Add(1)
	r.errOnce.Do(func() { r.firstErr = err.Error() })
}

// Run executes a bench run. It returns the report even when a threshold
// fails (the error then wraps ErrThreshold).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.setDefaults()
	loopback, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, loopback: loopback, http: &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Publishers * 2}}}
	defer r.http.CloseIdleConnections()
	r.window.Store(new(Histogram))
	r.hist.Store(new(Histogram))
	if r.proto, err = protocolOf(cfg.Protocol); err != nil {
		return nil, err
	}
	if cfg.Compression && !r.proto.needsToken {
		return nil, errors.New("bench: --compression is for Sori's protocol only")
	}
	r.plan()

	if cfg.PinServer && cfg.ServerPID <= 0 {
		return nil, errors.New("bench: pinning the server needs its process id (--server-pid)")
	}
	if cfg.PinSelf {
		if err := pinProcess(0, cfg.CPUCore); err != nil {
			return nil, err
		}
	}
	if cfg.PinServer {
		if err := pinProcess(cfg.ServerPID, cfg.ServerCPUCore); err != nil {
			return nil, err
		}
	}
	rep := &Report{}
	rep.Config.ServerPID, rep.Config.ServerCPUCore, rep.Config.CPUCore = cfg.ServerPID, -1, -1
	if cfg.PinServer {
		rep.Config.ServerCPUCore = cfg.ServerCPUCore
	}
	if cfg.PinSelf {
		rep.Config.CPUCore = cfg.CPUCore
	}
	rep.Config.URL, rep.Config.Pattern, rep.Config.Conns, rep.Config.RoomSize = cfg.URL, cfg.Pattern, cfg.Conns, cfg.RoomSize
	rep.Config.Size, rep.Config.Rate, rep.Config.Duration = cfg.Size, cfg.Rate, cfg.Duration.String()
	rep.Config.SourceIPs, rep.Config.Compression = cfg.SourceIPs, cfg.Compression

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	progressDone := make(chan struct{})
	var series []Point
	go func() {
		defer close(progressDone)
		series = r.progress(runCtx, start)
	}()

	// Ramp.
	clients := make([]*client, cfg.Conns)
	tick := time.Duration(float64(time.Second) / cfg.Ramp)
	next := time.Now()
	var ramp sync.WaitGroup
	for i := range clients {
		if d := time.Until(next); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		next = next.Add(tick)
		ramp.Add(1)
		go func() {
			defer ramp.Done()
			c, err := r.dial(runCtx, i)
			if err != nil {
				r.fail(err)
				return
			}
			clients[i] = c
			r.conns.Add(1)
			wg.Add(1)
			go func() { defer wg.Done(); c.readLoop(r) }()
		}()
	}
	ramp.Wait()
	rep.RampSeconds = time.Since(start).Seconds()
	for i, c := range clients {
		if c != nil {
			r.subs[r.channelOf(i)]++
		}
	}

	if cfg.FindRate && r.conns.Load() > 0 {
		sat, steps := r.findRate(runCtx)
		rep.SaturatingRate, rep.Steps = sat, steps
		rep.SaturationBound = saturationBound(steps, sat, cfg.ServerPID > 0)
		if sat > 0 {
			r.cfg.Rate = sat * cfg.Load
		} else {
			r.fail(fmt.Errorf("bench: no step of the rate search kept up (%d steps); measuring at --rate", len(steps)))
		}
		rep.Config.Rate = r.cfg.Rate
		r.resetPhase()
	}

	// Publish.
	before, _ := r.scrape()
	rssBefore := r.serverRSS()
	cpu0, cpuErr := r.serverCPU(before)
	self0, selfErr := processCPU(os.Getpid())
	pubStart := time.Now()
	if r.conns.Load() > 0 { // with no one to deliver to there is nothing to measure
		r.publish(runCtx)
	}
	pubEnd := time.Now()
	after, _ := r.scrape()
	rep.ServerRSSStart, rep.ServerRSS = before["process_resident_memory_bytes"], after["process_resident_memory_bytes"]
	if cfg.ServerPID > 0 { // any server: its RSS from /proc, as its CPU
		rep.ServerRSSStart, rep.ServerRSS = rssBefore, r.serverRSS()
	}

	// Drain: wait until every expected delivery arrived, or the drain time.
	deadline := time.Now().Add(cfg.Drain)
	for r.delivered.Load() < r.expected.Load() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	// The server's CPU is read after the drain: the deliveries counted
	// include those a saturated server was still writing when publishing
	// stopped, so the CPU spent writing them must be counted too, or a
	// server that queues looks cheaper per delivery than one that drops.
	cpuAfter := after
	if cfg.ServerPID <= 0 {
		cpuAfter, _ = r.scrape()
	}
	cpu1, cpuErr1 := r.serverCPU(cpuAfter)
	if cpuErr == nil && cpuErr1 == nil {
		rep.ServerCPU = cpu1 - cpu0
	} else {
		r.fail(errors.Join(cpuErr, cpuErr1))
	}
	if self1, err := processCPU(os.Getpid()); err == nil && selfErr == nil {
		rep.ClientCPU = self1 - self0
		if d := time.Since(pubStart).Seconds(); d > 0 {
			rep.ClientCPUShare = rep.ClientCPU / d
		}
	}
	r.stopping.Store(true)
	for _, c := range clients {
		if c != nil {
			c.close()
		}
	}
	cancel()
	wg.Wait()
	<-progressDone

	rep.Connected = r.conns.Load()
	rep.Published = r.published.Load()
	rep.Expected = r.expected.Load()
	rep.Delivered = r.delivered.Load()
	if d := pubEnd.Sub(pubStart).Seconds(); d > 0 {
		rep.DeliveriesSec = float64(rep.Delivered) / d
	}
	rep.Latency = r.hist.Load().Summary()
	rep.Errors, rep.Disconnects, rep.FirstError = r.errors.Load(), r.discs.Load(), r.firstErr
	switch k := r.rxKernel.Load(); {
	case k == 0:
		rep.RxClock = RxClockApp
	case k == rep.Connected:
		rep.RxClock = RxClockKernel
	default:
		rep.RxClock = "mixed"
	}
	if rep.Delivered > 0 {
		rep.ServerCPUPerDel = rep.ServerCPU / float64(rep.Delivered) * 1e6
	}
	rep.Series = series
	if rep.Connected == 0 || rep.Delivered == 0 {
		// An unreachable server or a wrong API key measures nothing; that
		// is a failed run, not a result of zero.
		why := rep.FirstError
		if why == "" {
			why = "no error seen"
		}
		rep.Failed = append(rep.Failed, fmt.Sprintf("measured nothing: connected %d of %d, delivered %d of %d (first error: %s)",
			rep.Connected, cfg.Conns, rep.Delivered, rep.Expected, why))
	}
	if cfg.MinDeliveries > 0 && rep.DeliveriesSec < cfg.MinDeliveries {
		rep.Failed = append(rep.Failed, fmt.Sprintf("deliveries/s %.0f < --min-deliveries %.0f", rep.DeliveriesSec, cfg.MinDeliveries))
	}
	if cfg.MaxP99 > 0 && rep.Latency.P99 > ms(cfg.MaxP99) {
		rep.Failed = append(rep.Failed, fmt.Sprintf("p99 %.2fms > --max-p99 %v", rep.Latency.P99, cfg.MaxP99))
	}
	if cfg.MaxErrors >= 0 && rep.Errors+rep.Disconnects > int64(cfg.MaxErrors) {
		rep.Failed = append(rep.Failed, fmt.Sprintf("errors+disconnects %d > --max-errors %d", rep.Errors+rep.Disconnects, cfg.MaxErrors))
	}
	if len(rep.Failed) > 0 {
		return rep, fmt.Errorf("%w: %s", ErrThreshold, strings.Join(rep.Failed, "; "))
	}
	return rep, nil
}

// serverCPU is the server's CPU seconds so far: from /proc/<pid>/stat with
// ServerPID, otherwise from the /metrics sample m.
func (r *run) serverCPU(m map[string]float64) (float64, error) {
	if r.cfg.ServerPID > 0 {
		return processCPU(r.cfg.ServerPID)
	}
	return m["process_cpu_seconds_total"], nil
}

// serverRSS is the ServerPID process's RSS, 0 when unknown.
func (r *run) serverRSS() float64 {
	if r.cfg.ServerPID <= 0 {
		return 0
	}
	v, err := processRSS(r.cfg.ServerPID)
	if err != nil {
		r.fail(err)
	}
	return v
}

// plan names the channels of the pattern.
func (r *run) plan() {
	switch r.cfg.Pattern {
	case PatternRoom:
		r.channels = []string{"bench.room"}
	case PatternRooms:
		n := (r.cfg.Conns + r.cfg.RoomSize - 1) / r.cfg.RoomSize
		for i := range n {
			r.channels = append(r.channels, "bench.room"+strconv.Itoa(i))
		}
	case PatternPersonal:
		for i := range r.cfg.Conns {
			r.channels = append(r.channels, "user:"+userOf(i))
		}
	}
	r.subs = make([]int64, len(r.channels))
}

func userOf(i int) string { return "bench-" + strconv.Itoa(i) }

func (r *run) channelOf(i int) int {
	switch r.cfg.Pattern {
	case PatternRooms:
		return i / r.cfg.RoomSize
	case PatternPersonal:
		return i
	}
	return 0
}

// api POSTs to the server API.
func (r *run) api(ctx context.Context, path string, body any, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.cfg.URL+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "apikey "+r.cfg.APIKey)
	resp, err := r.http.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, bytes.TrimSpace(rb))
	}
	if out != nil {
		return json.Unmarshal(rb, out)
	}
	return nil
}

// publishOne publishes data on ch through the server's API.
func (r *run) publishOne(ctx context.Context, ch string, data json.RawMessage) error {
	path, body, header := r.proto.publish(ch, data, r.cfg.APIKey)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.cfg.URL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header = header
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.http.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK || bytes.Contains(rb, []byte(`"error"`)) {
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, bytes.TrimSpace(rb))
	}
	return nil
}

// publish sends Rate publications per second for Duration through the server
// API, from Publishers workers.
func (r *run) publish(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Duration)
	defer cancel()
	jobs := make(chan int, r.cfg.Publishers)
	var wg sync.WaitGroup
	pad := strings.Repeat("x", max(r.cfg.Size-30, 0))
	for range r.cfg.Publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ch := range jobs {
				data := json.RawMessage(`{"t":` + strconv.FormatInt(time.Now().UnixNano(), 10) + `,"p":"` + pad + `"}`)
				r.expected.Add(r.subs[ch])
				// The run's end stops new publications, not one in flight:
				// cancelling it could drop the answer of a publication the
				// server has made, and its deliveries would count as extra.
				reqCtx, cancelReq := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				err := r.publishOne(reqCtx, r.channels[ch], data)
				cancelReq()
				if err != nil {
					r.expected.Add(-r.subs[ch])
					r.fail(err)
					continue
				}
				r.published.Add(1)
			}
		}()
	}
	interval := time.Duration(float64(time.Second) / r.cfg.Rate)
	next := time.Now()
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for ctx.Err() == nil {
		if d := time.Until(next); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
		}
		next = next.Add(interval)
		select {
		case jobs <- rnd.IntN(len(r.channels)):
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
}

// progress prints a live line each interval and returns the time series.
func (r *run) progress(ctx context.Context, start time.Time) []Point {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	var series []Point
	last, lastT := int64(0), start
	point := func(now time.Time, w *Histogram) Point {
		d := r.delivered.Load()
		p := Point{T: now.Sub(start).Seconds(), Conns: r.conns.Load(),
			P50: ms(w.Quantile(.5)), P99: ms(w.Quantile(.99))}
		if dt := now.Sub(lastT).Seconds(); dt > 0 {
			p.DeliveriesSec = float64(d-last) / dt
		}
		last, lastT = d, now
		return p
	}
	for {
		select {
		case <-ctx.Done():
			// The last, partial interval (the drain, where the slowest
			// deliveries arrive) is a point too: without it the headline p99
			// could exceed every plotted one.
			if w := r.window.Swap(new(Histogram)); w.Count() > 0 {
				series = append(series, point(time.Now(), w))
			}
			if r.cfg.Progress != nil {
				fmt.Fprintln(r.cfg.Progress)
			}
			return series
		case now := <-t.C:
			p := point(now, r.window.Swap(new(Histogram)))
			if m, err := r.scrape(); err == nil {
				p.ServerRSS = m["process_resident_memory_bytes"]
			}
			series = append(series, p)
			if r.cfg.Progress != nil {
				fmt.Fprintf(r.cfg.Progress, "\r%6.1fs  conns %6d  deliveries/s %9.0f  p50 %7.2fms  p99 %7.2fms  errors %d  disconnects %d   ",
					p.T, p.Conns, p.DeliveriesSec, p.P50, p.P99, r.errors.Load(), r.discs.Load())
			}
		}
	}
}

// scrape reads the server's process metrics from /metrics.
func (r *run) scrape() (map[string]float64, error) {
	resp, err := r.http.Get(r.cfg.URL + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("bench: scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("bench: scrape metrics: %w", err)
	}
	return ParseMetrics(b, "process_resident_memory_bytes", "process_cpu_seconds_total"), nil
}

// ParseMetrics reads the named unlabelled samples from Prometheus text.
func ParseMetrics(b []byte, names ...string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		for _, n := range names {
			if name == n {
				if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
					out[n] = v
				}
			}
		}
	}
	return out
}
