package sfu

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The memory benchmark runs the server in a child process, as the
// forwarding-cost benchmark does (bench_test.go), so that its heap and RSS
// are the server's alone. The child is that benchmark's server (benchServer)
// with one more request on its input: {"mem":true} collects garbage,
// returns freed memory to the OS and answers {"mem":{…}} with the live
// heap, the RSS and the goroutine count.

// memEnv marks a child started by startMemChild; it is read in init,
// before TestMain, because TestMain (bench_test.go) knows only benchServer.
const memEnv = "SORI_SFUBENCH_MEM"

func init() {
	if mode := os.Getenv("SORI_SFUBENCH_SERVER"); mode != "" && os.Getenv(memEnv) != "" {
		// Sample the allocations 32 times as often as by default, so
		// that the live bytes per allocation site are close (every
		// allocation would slow the server down too much).
		runtime.MemProfileRate = memProfileRate
		os.Exit(memServer(mode, os.Stdin, os.Stdout))
	}
}

const memProfileRate = 16 << 10

// memSites are the allocation sites whose live bytes memFigures reports
// apart: the first frame of an allocation's stack (innermost first) that
// contains one of these names gives its site.
var memSites = []struct{ site, frame string }{
	{"forwarder", "sfu.NewForwarder"},
	{"packets", "sfu.(*layer).store"},     // the up tracks' cached payloads
	{"layers", "sfu.(*upTrack).addLayer"}, // a layer's fixed state, its cache's slots among it
	{"readrtp", "(*TrackRemote).ReadRTP"}, // packets in flight (the SFU's read loops no longer call it)
	{"buffers", "packetio.(*Buffer)"},     // pion's SRTP/ICE read buffers: grow when their reader is late
}

// siteBytes is the live heap per memSites site (and "other"), from the
// memory profile of the last GC, scaled for the sampling.
func siteBytes() map[string]uint64 {
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, false)
	for {
		recs = make([]runtime.MemProfileRecord, n+64)
		var ok bool
		if n, ok = runtime.MemProfile(recs, false); ok {
			recs = recs[:n]
			break
		}
	}
	out := map[string]uint64{}
	for _, r := range recs {
		site := "other"
		frames := runtime.CallersFrames(r.Stack())
	walk:
		for {
			f, more := frames.Next()
			for _, s := range memSites {
				if strings.Contains(f.Function, s.frame) {
					site = s.site
					break walk
				}
			}
			if !more {
				break
			}
		}
		// Scale the sampled bytes up as pprof does: an allocation of size
		// a is in the profile with probability 1 − e^(−a/rate).
		if objs := r.InUseObjects(); objs > 0 {
			avg := float64(r.InUseBytes()) / float64(objs)
			out[site] += uint64(float64(r.InUseBytes()) / (1 - math.Exp(-avg/memProfileRate)))
		}
	}
	return out
}

// memFigures is one {"mem":…} answer.
type memFigures struct {
	Heap       uint64 `json:"heap"` // bytes of live heap after GC
	RSS        uint64 `json:"rss"`  // bytes, VmRSS after returning freed memory
	Goroutines int    `json:"goroutines"`
	// Sites is the live heap per allocation site (memSites).
	Sites map[string]uint64 `json:"sites"`
}

// lineWriter serializes whole lines from benchServer and memServer onto
// one output (each json.Encoder.Encode is one Write of one line).
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func memServer(mode string, in io.Reader, out io.Writer) int {
	lw := &lineWriter{w: out}
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() { done <- benchServer(mode, pr, lw) }()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var req struct {
			Mem bool `json:"mem"`
		}
		if bytes.Contains(line, []byte(`"mem"`)) && json.Unmarshal(line, &req) == nil && req.Mem {
			b, _ := json.Marshal(map[string]memFigures{"mem": measureMem()})
			_, _ = lw.Write(append(b, '\n'))
			continue
		}
		if _, err := pw.Write(append(slices.Clone(line), '\n')); err != nil {
			break
		}
	}
	_ = pw.Close()
	return <-done
}

func measureMem() memFigures {
	runtime.GC()
	debug.FreeOSMemory() // collects again, then returns what is free
	runtime.GC()         // the memory profile is as of the last completed cycle
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	// SORI_SFUBENCH_HEAPPROFILE=file keeps the heap profile of the latest
	// measurement, to see what the bytes are.
	if path := os.Getenv("SORI_SFUBENCH_HEAPPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			_ = pprof.WriteHeapProfile(f)
			_ = f.Close()
		}
	}
	return memFigures{Heap: ms.HeapAlloc, RSS: vmRSS(), Goroutines: runtime.NumGoroutine(), Sites: siteBytes()}
}

func vmRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// memChild is a benchChild whose output reader also takes mem answers.
type memChild struct {
	*benchChild
	mem chan memFigures
}

// startMemChild is startBenchChild for a memServer child.
func startMemChild(t *testing.T, mode string) *memChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SORI_SFUBENCH_SERVER="+mode, memEnv+"=1")
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
		t.Fatal(err)
	}
	c := &memChild{
		benchChild: &benchChild{t: t, cmd: cmd, stdin: stdin, enc: json.NewEncoder(stdin), clients: map[string]*testClient{}, stats: make(chan benchMsg, 1)},
		mem:        make(chan memFigures, 1),
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m struct {
				benchMsg
				Mem *memFigures `json:"mem"`
			}
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			switch {
			case m.Mem != nil:
				c.mem <- *m.Mem
			case m.Err != "":
				t.Errorf("%s server: %s: %s", mode, m.Peer, m.Err)
			case m.Stats:
				c.stats <- m.benchMsg
			case m.Signal != nil:
				c.mu.Lock()
				cl := c.clients[m.Peer]
				c.mu.Unlock()
				if cl != nil {
					cl.in <- *m.Signal
				}
			}
		}
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	return c
}

func (c *memChild) measure() memFigures {
	c.mu.Lock()
	_, err := c.stdin.Write([]byte("{\"mem\":true}\n"))
	c.mu.Unlock()
	if err != nil {
		c.t.Fatal(err)
	}
	select {
	case m := <-c.mem:
		return m
	case <-time.After(30 * time.Second):
		c.t.Fatal("no memory figures from the server")
	}
	return memFigures{}
}

// memRound is one round's per-item costs, in bytes (heap, RSS) and
// goroutines.
type memRound struct {
	// heap, rss, goroutines, and heap without pion's read buffers (which
	// grow with how late their readers were, not with the tracks)
	conn, down, pub [4]float64
	// From the allocation sites at the end of the round, exact: live
	// bytes of the Forwarders per down track, of the packets read from
	// publishers (the caches: payloads and slots) per published stream
	// (simulcast layer or microphone), and of pion's read buffers in
	// total.
	fwdPerDown, pktsPerStream, buffers, heap float64
}

// memBenchRound measures, in one server (mode "sfu", or "sfu-mtu": the
// same with the packet cache's old cost, a receive-MTU buffer per packet), the cost of a subscriber's
// connection c, of a down track d and of a publisher p (its connection and
// its two published tracks: a camera with three simulcast layers and a
// microphone, media flowing until every layer's packet cache has wrapped).
// Every participant receives every other participant's tracks. After a
// warm-up (one subscriber and one publisher: the first of each touches
// code and one-time runtime structures), from the heap and RSS deltas:
//
//	+1 publisher (1 subscriber, 1 publisher there) = c' + p + 6·d
//	+m subscribers (2 publishers there)            = m·(c + 4·d)
//	+n publishers                                  (logged only)
//	+m2 subscribers (2+n publishers there)         = m2·(c + 2(2+n)·d)
//
// so d comes from the difference of the two subscriber steps, c from
// either, and p from the first step, taking a publisher's connection c'
// as a subscriber's c (a subscriber also opens a data channel; a
// publisher does not).
func memBenchRound(t *testing.T, mode string, n, m, m2 int) memRound {
	child := startMemChild(t, mode)
	var subs, pubs []*testClient
	join := func(k int) []*testClient {
		var added []*testClient
		for i := 0; i < k; i++ {
			cl := child.client(fmt.Sprintf("sub%d", len(subs)))
			child.register(cl)
			cl.capDownlink(1e9)
			cl.subscribe()
			subs = append(subs, cl)
			added = append(added, cl)
		}
		for _, cl := range added {
			select {
			case <-cl.connected:
			case <-time.After(90 * time.Second):
				t.Fatalf("%s never connected", cl.id)
			}
		}
		return added
	}
	wait := func(what func() string, cond func() bool) {
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// settle waits until every one of cls receives every publisher's video
	// and audio, and then until each publisher has sent cacheSize/4 + 30
	// more frames, so that its packet caches (4 packets a frame in the
	// lowest layer) have wrapped.
	settle := func(cls []*testClient) {
		for _, cl := range cls {
			want := 2 * len(pubs)
			if slices.Contains(pubs, cl) {
				want -= 2 // not its own
			}
			if want == 0 {
				continue
			}
			wait(func() string {
				l, _, _, a := cl.snapshot()
				return fmt.Sprintf("%s to receive every track (%d of %d tracks, video packets per layer %v, audio %d)", cl.id, countTracks(cl), want, l, a)
			}, func() bool {
				layers, _, _, audio := cl.snapshot()
				return countTracks(cl) >= want && layers[0]+layers[1]+layers[2] > 50 && audio > 50
			})
		}
		from := make([]uint32, len(pubs))
		for i, pub := range pubs {
			from[i] = pub.frame.Load()
		}
		for i, pub := range pubs {
			wait(func() string { return pub.id + " to wrap its caches" }, func() bool { return pub.frame.Load() >= from[i]+cacheSize/4+30 })
		}
	}
	publish := func(k int) {
		var added []*testClient
		for i := 0; i < k; i++ {
			pub := child.client(fmt.Sprintf("pub%d", len(pubs)))
			child.register(pub)
			pub.capDownlink(1e9)
			// 4 packets of 300 bytes, 4 of 900 and 4 of 1,000 a frame
			// at 30 fps: every layer's cache wraps within 5 s.
			pub.shape = [maxLayers]struct{ packets, size int }{{4, 300}, {4, 900}, {4, 1000}}
			pubs = append(pubs, pub)
			added = append(added, pub)
		}
		for _, pub := range added {
			pub.publish(true, 20)
		}
		settle(append(slices.Clone(subs), pubs...))
	}
	// downs is the number of down tracks: every participant receives every
	// other participant's two tracks.
	downs := func() int { return 2 * len(pubs) * (len(subs) + len(pubs) - 1) }

	join(1)
	publish(1)
	f0, d0 := child.measure(), downs()
	publish(1)
	f1, d1 := child.measure(), downs()
	join(m)
	f2 := child.measure()
	publish(n)
	f3 := child.measure()
	settle(join(m2))
	f4 := child.measure()
	t.Logf("server (heap KiB, rss KiB, goroutines): warm %d, %d, %d; +1 publisher %d, %d, %d; +%d subscribers %d, %d, %d; +%d publishers %d, %d, %d; +%d subscribers %d, %d, %d (%d down tracks); load %s",
		f0.Heap>>10, f0.RSS>>10, f0.Goroutines, f1.Heap>>10, f1.RSS>>10, f1.Goroutines, m, f2.Heap>>10, f2.RSS>>10, f2.Goroutines,
		n, f3.Heap>>10, f3.RSS>>10, f3.Goroutines, m2, f4.Heap>>10, f4.RSS>>10, f4.Goroutines, downs(), loadAvg())
	vec := func(a, b memFigures) [4]float64 {
		return [4]float64{float64(b.Heap) - float64(a.Heap), float64(b.RSS) - float64(a.RSS), float64(b.Goroutines - a.Goroutines),
			float64(b.Heap-b.Sites["buffers"]) - float64(a.Heap-a.Sites["buffers"])}
	}
	sPub, sEarly, sLate := vec(f0, f1), vec(f1, f2), vec(f3, f4)
	var r memRound
	for k := range 4 {
		early, late := sEarly[k]/float64(m), sLate[k]/float64(m2) // c + 4d, c + 2(2+n)d
		r.down[k] = (late - early) / float64(2*(2+n)-4)
		r.conn[k] = early - 4*r.down[k]
		r.pub[k] = sPub[k] - r.conn[k] - float64(d1-d0)*r.down[k]
	}
	r.fwdPerDown = float64(f4.Sites["forwarder"]) / float64(downs())
	r.pktsPerStream = float64(f4.Sites["packets"]+f4.Sites["layers"]+f4.Sites["readrtp"]) / float64(len(pubs)*(maxLayers+1))
	r.buffers, r.heap = float64(f4.Sites["buffers"]), float64(f4.Heap)
	t.Logf("at the end (%d down tracks, %d publishers): live heap by site %v KiB", downs(), len(pubs), func() map[string]uint64 {
		kib := map[string]uint64{}
		for k, v := range f4.Sites {
			kib[k] = v >> 10
		}
		return kib
	}())
	return r
}

// countTracks is how many remote tracks cl has been offered: transceivers
// whose receiver has a track.
func countTracks(cl *testClient) int {
	n := 0
	for _, tr := range cl.pc.GetTransceivers() {
		if tr.Receiver() != nil && len(tr.Receiver().Tracks()) > 0 {
			n++
		}
	}
	return n
}

// TestMemoryPerTrack reports the SFU's memory per subscriber connection,
// per down track and per publisher's published pair (camera with three
// simulcast layers + microphone), as heap (live, after GC) and RSS deltas
// of the server process, medians of several rounds, for the SFU as it is
// and for a baseline that keeps each cached packet in a receive-MTU buffer
// (its cost before payloads were copied to size), with the ratio. It
// asserts nothing; it runs only with SORI_SFU_BENCH=1.
func TestMemoryPerTrack(t *testing.T) {
	if os.Getenv("SORI_SFU_BENCH") == "" {
		t.Skip("set SORI_SFU_BENCH=1 to measure memory per track")
	}
	const n, m, m2 = 3, 4, 4
	// Each round measures the SFU as it is and the baseline ("sfu-mtu":
	// each cached packet in a receive-MTU buffer, the cost before payloads
	// were copied to size), in turns, so that both see the same load.
	rounds := map[string][]memRound{}
	for round := range benchRounds(3) {
		modes := []string{"sfu", "sfu-mtu"}
		if round%2 == 1 {
			modes = []string{"sfu-mtu", "sfu"}
		}
		for _, mode := range modes {
			t.Run(fmt.Sprintf("round-%d-%s", round, mode), func(t *testing.T) {
				r := memBenchRound(t, mode, n, m, m2)
				t.Logf("per subscriber connection: heap %.1f KiB (%.1f without pion read buffers), rss %.1f KiB, %.1f goroutines; per down track: heap %.1f KiB (%.1f), rss %.1f KiB, %.1f goroutines; per publisher (connection, camera with 3 layers, mic): heap %.1f KiB (%.1f), rss %.1f KiB, %.1f goroutines",
					r.conn[0]/1024, r.conn[3]/1024, r.conn[1]/1024, r.conn[2], r.down[0]/1024, r.down[3]/1024, r.down[1]/1024, r.down[2], r.pub[0]/1024, r.pub[3]/1024, r.pub[1]/1024, r.pub[2])
				t.Logf("by allocation site: Forwarder %.1f KiB per down track, packet cache %.1f KiB per published stream, pion read buffers %.0f KiB of %.0f KiB live heap",
					r.fwdPerDown/1024, r.pktsPerStream/1024, r.buffers/1024, r.heap/1024)
				rounds[mode] = append(rounds[mode], r)
			})
		}
	}
	med := func(mode string, get func(memRound) float64) float64 {
		var v []float64
		for _, r := range rounds[mode] {
			v = append(v, get(r))
		}
		if len(v) == 0 {
			return 0
		}
		slices.Sort(v)
		return (v[(len(v)-1)/2] + v[len(v)/2]) / 2
	}
	for _, mode := range []string{"sfu", "sfu-mtu"} {
		for _, f := range []struct {
			what string
			get  func(memRound) [4]float64
		}{
			{"per subscriber connection", func(r memRound) [4]float64 { return r.conn }},
			{"per down track", func(r memRound) [4]float64 { return r.down }},
			{"per publisher (connection, camera with 3 layers, mic)", func(r memRound) [4]float64 { return r.pub }},
		} {
			t.Logf("%s, median of %d rounds, %s: heap %.1f KiB (%.1f KiB without pion read buffers), rss %.1f KiB, %.1f goroutines", mode, len(rounds[mode]), f.what,
				med(mode, func(r memRound) float64 { return f.get(r)[0] / 1024 }), med(mode, func(r memRound) float64 { return f.get(r)[3] / 1024 }),
				med(mode, func(r memRound) float64 { return f.get(r)[1] / 1024 }), med(mode, func(r memRound) float64 { return f.get(r)[2] }))
		}
		t.Logf("%s, median of %d rounds, by allocation site: Forwarder %.1f KiB per down track; packet cache %.1f KiB per published stream; pion read buffers %.0f KiB of %.0f KiB live heap",
			mode, len(rounds[mode]), med(mode, func(r memRound) float64 { return r.fwdPerDown / 1024 }), med(mode, func(r memRound) float64 { return r.pktsPerStream / 1024 }),
			med(mode, func(r memRound) float64 { return r.buffers / 1024 }), med(mode, func(r memRound) float64 { return r.heap / 1024 }))
	}
	ratio := func(get func(memRound) float64) float64 {
		if b := med("sfu-mtu", get); b != 0 {
			return med("sfu", get) / b
		}
		return 0
	}
	t.Logf("sfu / sfu-mtu (payloads copied to size / in receive-MTU buffers), ratio of medians: packet cache per published stream %.2f; heap per publisher %.2f (%.2f without pion read buffers)",
		ratio(func(r memRound) float64 { return r.pktsPerStream }), ratio(func(r memRound) float64 { return r.pub[0] }), ratio(func(r memRound) float64 { return r.pub[3] }))
}
