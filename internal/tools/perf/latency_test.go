package perf

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/auth"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/server"
	"github.com/sori-dev/sori/internal/tools/bench"
	"github.com/sori-dev/sori/internal/tools/wsclient"
)

// The open-loop latency measurement (bar 3, docs/benchmarks.md): the server
// runs in its own process, the subscribers and a paced publisher in the test
// process. The saturating rate is found open-loop: a publisher offers a fixed
// rate whatever the server does, the rate is ramped, and the highest rate at
// which deliveries keep up is the saturating rate. Then both servers are
// paced at half of Sori's saturating rate and the publish→deliver latencies
// are compared.
var (
	latShapes = flag.String("perf.latshapes", "fanout,rooms,fan1k",
		"latency shapes: fanout (1 channel × -perf.subs), rooms (-perf.rooms channels sharing -perf.subs), fan1k (1 channel × 1,000)")
	latStep  = flag.Duration("perf.step", 2*time.Second, "how long each step of the open-loop ramp offers its rate")
	latStart = flag.Float64("perf.start", 0, "first rate of the ramp in publications/s (0: a default per shape)")
	latFixed = flag.Float64("perf.latrate", 0, "skip the ramps: take this as Sori's saturating rate in publications/s (for profiles and before/after checks)")
)

// Criteria for "deliveries keep up" at an offered rate.
const (
	keepUpShare = 0.99                  // delivered within the window + latGrace, as a share of offered
	latGrace    = 50 * time.Millisecond // deliveries in flight when the window closes
	refineSteps = 3                     // bisection steps after the doubling ramp (resolution 2^(1/8) ≈ 9%)
)

// childRoles are the server processes of this measurement (see runChild).
var childRoles = map[string]func(ln net.Listener, done chan struct{}) (stop func(), err error){
	"sori-latency": serveSoriLatency,
	"raw-latency":  serveRawLatency,
}

// serveSoriLatency serves Sori with perfConfig and the per-connection command
// rate lifted:
// the measurement's one publisher connection publishes thousands of times
// per second, as a backend on the server API would.
func serveSoriLatency(ln net.Listener, done chan struct{}) (func(), error) {
	dir, err := os.MkdirTemp("", "sori-perf-")
	if err != nil {
		return nil, err
	}
	cfg := perfConfig(dir)
	cfg.CommandRate = 1e9
	cfg.CommandBurst = 1 << 30
	srv, err := server.New(cfg, nil)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	go func() { _ = srv.Serve(ln); close(done) }()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = os.RemoveAll(dir)
	}, nil
}

// serveRawLatency runs the raw-TCP fan-out harness as a server process. A
// connection's first byte says what it is: 'S' a subscriber (answered with an
// empty frame once registered), 'P' the publisher, whose length-prefixed
// frames carry group (2 bytes), groups (2 bytes) and the publication data.
// For each, the harness encodes the publication frame once, as Sori's hub
// does, fans it out with RawFanout.PublishGroup, and acknowledges it to the
// publisher as Sori replies to a publish command.
func serveRawLatency(ln net.Listener, done chan struct{}) (func(), error) {
	r := NewRawFanout()
	var (
		mu   sync.Mutex
		pubs []net.Conn
		wg   sync.WaitGroup
	)
	go func() {
		defer close(done)
		for {
			nc, err := ln.Accept()
			if err != nil {
				break
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				var kind [1]byte
				if _, err := io.ReadFull(nc, kind[:]); err != nil {
					_ = nc.Close()
					return
				}
				switch kind[0] {
				case 'S':
					r.Add(nc)
					_, _ = nc.Write([]byte{0, 0})
				case 'P':
					mu.Lock()
					pubs = append(pubs, nc)
					mu.Unlock()
					rawPublisher(r, nc)
				default:
					_ = nc.Close()
				}
			}()
		}
		mu.Lock()
		for _, nc := range pubs {
			_ = nc.Close()
		}
		mu.Unlock()
		_ = r.Close()
		wg.Wait()
	}()
	return func() { _ = ln.Close() }, nil
}

func rawPublisher(r *RawFanout, nc net.Conn) {
	defer nc.Close()
	br := bufio.NewReaderSize(nc, 64<<10)
	var (
		seq   []uint64
		frame []byte
		acks  []byte
		ack   []byte
	)
	for {
		h, err := br.Peek(2)
		if err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(h))
		_, _ = br.Discard(2)
		p, err := br.Peek(n)
		if err != nil || n < 4 {
			return
		}
		group, groups := int(binary.BigEndian.Uint16(p)), int(binary.BigEndian.Uint16(p[2:]))
		for len(seq) <= group {
			seq = append(seq, 0)
		}
		seq[group]++
		pub := protocol.Publication{Offset: seq[group], Time: time.Now().UnixMilli(), Data: p[4:]}
		frame = protocol.AppendPublication(frame[:0], channelOf(group, groups), &pub)
		r.PublishGroup(group, groups, frame)
		_, _ = br.Discard(n)
		ack = append(strconv.AppendUint(append(ack[:0], `{"id":0,"result":{"epoch":"e","offset":`...), seq[group], 10), "}}"...)
		acks = append(binary.BigEndian.AppendUint16(acks, uint16(len(ack))), ack...)
		if br.Buffered() == 0 {
			if _, err := nc.Write(acks); err != nil {
				return
			}
			acks = acks[:0]
		}
	}
}

// latShape is how many subscribers, over how many channels.
type latShape struct {
	name   string
	subs   int
	groups int
	start  float64 // first rate of the ramp, publications/s
}

// latTarget is one server process with its subscribers and publisher.
type latTarget struct {
	name   string
	shape  latShape
	child  *child
	fleet  *Fleet
	clock  Clock
	pub    *Client
	ws     bool
	chans  []string
	perPub []int64 // deliveries per publication, by group
	errs   atomic.Int64
	done   chan struct{}
	buf    []byte
	data   []byte
	msg    []byte
	id     uint64
}

func setupLatency(t *testing.T, name string, sh latShape) *latTarget {
	t.Helper()
	role, path := "sori-latency", "/ws"
	if name == "raw-tcp" {
		role, path = "raw-latency", ""
	}
	lt := &latTarget{name: name, shape: sh, child: startChild(t, role), clock: NewClock(), ws: path != "",
		done: make(chan struct{})}
	for g := range sh.groups {
		lt.chans = append(lt.chans, channelOf(g, sh.groups))
		n := sh.subs / sh.groups
		if g < sh.subs%sh.groups {
			n++
		}
		lt.perPub = append(lt.perPub, int64(n))
	}
	clients, err := dialMany(lt.child.addr, path, sh.subs, 8<<10, func(i int) string { return lt.chans[i%sh.groups] })
	if err != nil {
		lt.child.stop()
		t.Fatal(err)
	}
	lt.fleet = &Fleet{Clients: clients}
	fail := func(err error) {
		lt.fleet.Close()
		lt.child.stop()
		t.Fatal(err)
	}
	if !lt.ws {
		for _, c := range clients {
			if _, err := c.nc.Write([]byte{'S'}); err != nil {
				fail(err)
			}
		}
		for _, c := range clients {
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			if p, err := c.Next(); err != nil || len(p) != 0 {
				fail(fmt.Errorf("raw subscriber registration: %q %v", p, err))
			}
			_ = c.SetReadDeadline(time.Time{})
		}
	}
	if lt.pub, err = lt.dialPublisher(); err != nil {
		fail(err)
	}
	go lt.readReplies()
	lt.fleet.Start(lt.clock)
	return lt
}

// dialPublisher connects the publisher: for Sori, a WebSocket connection
// with a token that grants publishing on perf:*.
func (lt *latTarget) dialPublisher() (*Client, error) {
	if !lt.ws {
		c, err := Dial(DialOptions{Addr: lt.child.addr})
		if err == nil {
			_, err = c.nc.Write([]byte{'P'})
		}
		return c, err
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{HMACSecret: []byte(perfConfig("").TokenSecret)})
	if err != nil {
		return nil, err
	}
	claims := auth.NewClaims("perf-publisher", time.Hour, time.Now())
	claims.Publish = []string{"perf:*"}
	tok, err := v.Mint(claims)
	if err != nil {
		return nil, err
	}
	c, err := Dial(DialOptions{Addr: lt.child.addr, Path: "/ws", ReadBytes: 64 << 10})
	if err != nil {
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if err := c.Send([]byte(`{"id":1,"op":"connect","token":"` + tok + `"}`)); err != nil {
		return nil, err
	}
	p, err := c.Until([]byte(`"id":1,`))
	if err != nil || !bytes.Contains(p, []byte(`"result"`)) {
		_ = c.Close()
		return nil, fmt.Errorf("publisher connect: %s %v", p, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, nil
}

// readReplies consumes the publisher's replies, counting errors.
func (lt *latTarget) readReplies() {
	defer close(lt.done)
	for {
		p, err := lt.pub.Next()
		if err != nil {
			return
		}
		if bytes.Contains(p, []byte(`"error"`)) {
			if lt.errs.Add(1) == 1 {
				fmt.Fprintf(os.Stderr, "%s publisher: %s\n", lt.name, p)
			}
		}
	}
}

func (lt *latTarget) stop() {
	_ = lt.pub.Close()
	<-lt.done
	lt.fleet.Close()
	lt.child.stop()
}

// appendPub appends the frame that publishes to group with timestamp stamp.
func (lt *latTarget) appendPub(b []byte, group int, stamp int64) []byte {
	lt.data = AppendStamp(lt.data[:0], stamp, *perfPad)
	if !lt.ws {
		b = binary.BigEndian.AppendUint16(b, uint16(4+len(lt.data)))
		b = binary.BigEndian.AppendUint16(b, uint16(group))
		b = binary.BigEndian.AppendUint16(b, uint16(lt.shape.groups))
		return append(b, lt.data...)
	}
	lt.id++
	m := append(lt.msg[:0], `{"id":`...)
	m = strconv.AppendUint(m, lt.id+1, 10)
	m = append(m, `,"op":"publish","channel":"`...)
	m = append(m, lt.chans[group]...)
	m = append(m, `","data":`...)
	m = append(m, lt.data...)
	m = append(m, '}')
	lt.msg = m
	return wsclient.AppendFrame(b, wsclient.OpText, m) // as Client.Send writes it
}

// stepResult is what one open-loop run at a fixed offered rate measured.
type stepResult struct {
	rate      float64
	offered   int64 // deliveries the publications of the window make
	delivered int64 // of those, received by the end of the window + latGrace
	first     *bench.Histogram
	second    *bench.Histogram // publications of the window's second half
	all       *bench.Histogram
	lag       *bench.Histogram // publisher: write time − scheduled time
	serverCPU float64          // cores used by the server process during the window
	clientCPU float64          // cores used by the test process (subscribers + publisher)
}

// keptUp reports whether deliveries kept up with the offered rate: nearly all
// delivered in time, and the latency of the second half of the window not
// grown over the first half's (a queue that grows shows in its median).
func (s *stepResult) keptUp() bool {
	p1, p2 := s.first.Quantile(.5), s.second.Quantile(.5)
	return float64(s.delivered) >= keepUpShare*float64(s.offered) && p2 <= 2*p1+2*time.Millisecond
}

func (s *stepResult) String() string {
	l := s.all.Summary()
	return fmt.Sprintf("%8.1f pub/s: delivered %6.2f%% | p50 1st/2nd half %6.2f/%6.2f ms | p50 %6.2f p99 %7.2f max %7.2f ms | publisher lag p99 %5.2f ms | CPU server %.2f clients %.2f",
		s.rate, 100*float64(s.delivered)/float64(max(s.offered, 1)), msOf(s.first.Quantile(.5)), msOf(s.second.Quantile(.5)),
		l.P50, l.P99, l.Max, msOf(s.lag.Quantile(.99)), s.serverCPU, s.clientCPU)
}

func msOf(d time.Duration) float64 { return float64(d) / 1e6 }

// run publishes at rate for d, open-loop: publication k is due at k/rate
// after the start and carries that scheduled time as its timestamp, so a
// publisher that falls behind (a blocked write, a late wake-up) shows as
// latency instead of lowering the offered rate. It waits until every
// publication is delivered.
func (lt *latTarget) run(rate float64, d time.Duration) (*stepResult, error) {
	f := lt.fleet
	base := f.Delivered()
	res := &stepResult{rate: rate, lag: new(bench.Histogram), all: new(bench.Histogram)}
	res.first = f.Measure()
	srv0, cli0 := procCPU(lt.child.cmd.Process.Pid), cpuTime()
	period := 1e9 / rate
	start := time.Now()
	c0 := lt.clock.Now()
	var (
		k      int
		stamps []int64
	)
	for {
		el := time.Since(start)
		if el >= d {
			break
		}
		if res.second == nil && el >= d/2 {
			res.second = f.Measure()
		}
		due := int(float64(el)/period) + 1
		b := lt.buf[:0]
		stamps = stamps[:0]
		for ; k < due; k++ {
			g := k % lt.shape.groups
			stamp := c0 + int64(float64(k)*period)
			b = lt.appendPub(b, g, stamp)
			stamps = append(stamps, stamp)
			res.offered += lt.perPub[g]
		}
		lt.buf = b
		if len(b) > 0 {
			if _, err := lt.pub.nc.Write(b); err != nil {
				return nil, fmt.Errorf("%s: publish: %w", lt.name, err)
			}
			now := lt.clock.Now()
			for _, s := range stamps {
				res.lag.Record(time.Duration(now - s))
			}
		}
		if wait := time.Duration(float64(k)*period) - time.Since(start); wait > 0 {
			time.Sleep(wait)
		}
	}
	el := time.Since(start).Seconds()
	res.serverCPU = (procCPU(lt.child.cmd.Process.Pid) - srv0).Seconds() / el
	res.clientCPU = (cpuTime() - cli0).Seconds() / el
	if res.second == nil {
		res.second = f.Measure()
	}
	time.Sleep(time.Until(start.Add(d + latGrace)))
	res.delivered = f.Delivered() - base
	deadline := time.Now().Add(2 * time.Minute)
	for f.Delivered()-base < res.offered {
		if time.Now().After(deadline) {
			f.StopMeasuring()
			return nil, fmt.Errorf("%s at %.0f pub/s: %d of %d deliveries arrived (a subscriber was disconnected?)",
				lt.name, rate, f.Delivered()-base, res.offered)
		}
		time.Sleep(time.Millisecond)
	}
	f.StopMeasuring()
	if n := lt.errs.Load(); n > 0 {
		return nil, fmt.Errorf("%s: %d publish errors", lt.name, n)
	}
	res.all.Merge(res.first)
	res.all.Merge(res.second)
	time.Sleep(200 * time.Millisecond) // let writers go idle between runs
	return res, nil
}

// procCPU returns the user+system CPU time of process pid.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// saturate ramps the offered rate open-loop: it doubles from start while
// deliveries keep up, then bisects (geometrically) between the last rate that
// kept up and the first that did not. A rate that fails is tried once more
// before it counts as failed, because other work shares the machine.
func (lt *latTarget) saturate(t *testing.T, start float64) (float64, error) {
	try := func(rate float64) (bool, error) {
		for range 2 {
			s, err := lt.run(rate, *latStep)
			if err != nil {
				return false, err
			}
			t.Logf("  %-8s ramp %s", lt.name, s)
			if s.keptUp() {
				return true, nil
			}
		}
		return false, nil
	}
	lo, hi := 0.0, 0.0
	for rate := start; hi == 0; {
		ok, err := try(rate)
		if err != nil {
			return 0, err
		}
		switch {
		case ok:
			lo = rate
			rate *= 2
		case lo == 0 && rate > 1:
			rate /= 2 // the first rate failed: go down
		default:
			hi = rate
		}
		if rate > 1e6 {
			return lo, nil
		}
	}
	if lo == 0 {
		return 0, fmt.Errorf("%s: no rate kept up", lt.name)
	}
	for range refineSteps {
		mid := math.Sqrt(lo * hi)
		ok, err := try(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// profileServer saves a CPU profile of the server process over d into the
// -perf.profile directory, when profiling.
func (lt *latTarget) profileServer(d time.Duration, name string) func() {
	if lt.child.pprof == "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", lt.child.pprof, int(d.Seconds())))
		if err != nil {
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(filepath.Join(*perfProf, name))
		if err != nil {
			return
		}
		_, _ = io.Copy(f, resp.Body)
		_ = f.Close()
	}()
	return func() { <-done }
}

// TestPerfLatency measures publish→deliver latency at half the saturating
// rate, open-loop, against the raw-TCP harness at the same offered rate (see
// docs/benchmarks.md, bar 3).
func TestPerfLatency(t *testing.T) {
	requirePerf(t)
	var shapes []latShape
	for _, name := range strings.Split(*latShapes, ",") {
		switch name {
		case "fanout":
			shapes = append(shapes, latShape{"fanout", *perfSubs, 1, 10})
		case "rooms":
			shapes = append(shapes, latShape{"rooms", *perfSubs, *perfRooms, 1000})
		case "fan1k":
			shapes = append(shapes, latShape{"fan1k", 1000, 1, 100})
		default:
			t.Fatalf("unknown shape %q", name)
		}
	}
	type row struct{ satS, satR, satRatio, s50, s99, smax, r50, r99, rmax, p99Ratio, rOwn99 []float64 }
	rows := map[string]*row{}
	for round := range *perfCount {
		if b, err := os.ReadFile("/proc/loadavg"); err == nil {
			t.Logf("round %d: load average %s", round+1, bytes.TrimSpace(b))
		}
		for _, sh := range shapes {
			if rows[sh.name] == nil {
				rows[sh.name] = &row{}
			}
			r := rows[sh.name]
			start := sh.start
			if *latStart > 0 {
				start = *latStart
			}
			var satSori float64
			var soriAt, rawAt, rawOwn *stepResult
			for _, name := range []string{"sori", "raw-tcp"} {
				lt := setupLatency(t, name, sh)
				sat, err := *latFixed, error(nil)
				if sat == 0 {
					sat, err = lt.saturate(t, start)
				}
				if err == nil {
					if name == "sori" {
						satSori = sat
						wait := lt.profileServer(*perfPace, fmt.Sprintf("latency-%s-%s-%d.cpu", sh.name, name, round+1))
						soriAt, err = lt.run(satSori/2, *perfPace)
						wait()
					} else {
						r.satR = append(r.satR, sat)
						wait := lt.profileServer(*perfPace, fmt.Sprintf("latency-%s-%s-%d.cpu", sh.name, name, round+1))
						rawAt, err = lt.run(satSori/2, *perfPace)
						wait()
						if err == nil {
							rawOwn, err = lt.run(sat/2, *perfPace)
						}
					}
				}
				lt.stop()
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("round %d %-6s %-8s saturating rate %.1f pub/s (%.0f deliveries/s)", round+1, sh.name, name, sat,
					sat*float64(sh.subs)/float64(sh.groups))
			}
			t.Logf("round %d %-6s sori    at 50%% of sori's rate: %s", round+1, sh.name, soriAt)
			t.Logf("round %d %-6s raw-tcp at 50%% of sori's rate: %s", round+1, sh.name, rawAt)
			t.Logf("round %d %-6s raw-tcp at 50%% of its own rate: %s", round+1, sh.name, rawOwn)
			s, w := soriAt.all.Summary(), rawAt.all.Summary()
			r.satS = append(r.satS, satSori)
			r.satRatio = append(r.satRatio, satSori/r.satR[len(r.satR)-1])
			r.s50, r.s99, r.smax = append(r.s50, s.P50), append(r.s99, s.P99), append(r.smax, s.Max)
			r.r50, r.r99, r.rmax = append(r.r50, w.P50), append(r.r99, w.P99), append(r.rmax, w.Max)
			r.p99Ratio = append(r.p99Ratio, s.P99/w.P99)
			r.rOwn99 = append(r.rOwn99, rawOwn.all.Summary().P99)
		}
	}
	for _, sh := range shapes {
		r := rows[sh.name]
		t.Logf("RESULT latency %s (%d subscribers, %d channels, median of %d): saturating rate sori %.1f pub/s, raw-tcp %.1f pub/s, sori/raw %.2f; "+
			"at 50%% of sori's rate: sori p50 %.2f p99 %.2f max %.2f ms, raw-tcp p50 %.2f p99 %.2f max %.2f ms, p99 sori/raw %.2f; raw-tcp p99 at 50%% of its own rate %.2f ms",
			sh.name, sh.subs, sh.groups, *perfCount, median(r.satS), median(r.satR), median(r.satRatio),
			median(r.s50), median(r.s99), median(r.smax), median(r.r50), median(r.r99), median(r.rmax), median(r.p99Ratio), median(r.rOwn99))
	}
}

// TestLatencyHarnessSmoke runs the open-loop harness at a tiny size in the
// default test run: both server processes start, every publication is
// delivered, latencies are recorded.
func TestLatencyHarnessSmoke(t *testing.T) {
	for _, name := range []string{"sori", "raw-tcp"} {
		lt := setupLatency(t, name, latShape{"smoke", 20, 3, 0})
		s, err := lt.run(300, 200*time.Millisecond)
		lt.stop()
		if err != nil {
			t.Fatal(err)
		}
		if s.all.Count() == 0 || s.offered == 0 {
			t.Errorf("%s: nothing measured: %s", name, s)
		}
	}
}
