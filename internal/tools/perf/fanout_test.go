package perf

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/tools/bench"
)

// shape is how subscribers spread over channels.
type shape struct {
	name   string
	groups int // channels; subscriber i is in channel i % groups
}

// target is one system under test with its subscribers connected.
type target struct {
	name    string
	subs    int
	groups  int
	fleet   *Fleet
	clock   Clock
	publish func(group int, seq uint64) error
	framing func() (frames, writes float64) // totals so far, when the target counts them
	stop    func()
	addr    string // the server's address (Sori's: HTTP API and /ws)
}

func channelOf(group, groups int) string {
	if groups == 1 {
		return "perf:fan"
	}
	return "perf:room" + strconv.Itoa(group)
}

// setupSori starts the real server in-process and subscribes subs clients.
func setupSori(t testing.TB, subs, groups int) *target {
	t.Helper()
	p := startInProcess(t)
	clients, err := dialMany(p.addr, "/ws", subs, 8<<10, func(i int) string { return channelOf(i%groups, groups) })
	if err != nil {
		p.stop()
		t.Fatal(err)
	}
	tg := &target{name: "sori", subs: subs, groups: groups, fleet: &Fleet{Clients: clients}, clock: NewClock(), addr: p.addr}
	channels := make([]string, groups)
	for g := range channels {
		channels[g] = channelOf(g, groups)
	}
	h := p.srv.Hub()
	ctx := context.Background()
	tg.publish = func(group int, _ uint64) error {
		data := AppendStamp(make([]byte, 0, 32+*perfPad), tg.clock.Now(), *perfPad)
		_, err := h.Publish(ctx, channels[group], data, "")
		return err
	}
	tg.framing = func() (float64, float64) {
		m, err := scrape(p.addr, `sori_messages_out_total{transport="websocket"}`, `sori_writes_total{transport="websocket"}`)
		if err != nil {
			return 0, 0
		}
		return m[`sori_messages_out_total{transport="websocket"}`], m[`sori_writes_total{transport="websocket"}`]
	}
	tg.stop = func() { tg.fleet.Close(); p.stop() }
	tg.fleet.Start(tg.clock)
	return tg
}

// setupRaw starts the raw-TCP fan-out harness and connects subs clients. It
// sends the same bytes Sori would: the publication frame, encoded once per
// publication.
func setupRaw(t testing.TB, subs, groups int) *target {
	t.Helper()
	r, err := ListenRawFanout()
	if err != nil {
		t.Fatal(err)
	}
	clients, err := dialMany(r.Addr(), "", subs, 8<<10, nil)
	if err != nil {
		_ = r.Close()
		t.Fatal(err)
	}
	for r.Conns() < subs {
		time.Sleep(time.Millisecond)
	}
	tg := &target{name: "raw-tcp", subs: subs, groups: groups, fleet: &Fleet{Clients: clients}, clock: NewClock()}
	tg.publish = func(group int, seq uint64) error {
		pub := protocol.Publication{Offset: seq, Time: time.Now().UnixMilli(),
			Data: AppendStamp(make([]byte, 0, 32+*perfPad), tg.clock.Now(), *perfPad)}
		ch := channelOf(group, groups)
		frame := protocol.AppendPublication(make([]byte, 0, 64+len(ch)+len(pub.Data)), ch, &pub)
		r.PublishGroup(group, groups, frame)
		return nil
	}
	tg.framing = func() (float64, float64) { return 0, 0 }
	tg.stop = func() { _ = r.Close(); tg.fleet.Close() }
	tg.fleet.Start(tg.clock)
	return tg
}

// perPub is how many deliveries one publication makes.
func (tg *target) perPub(group int) int64 {
	n := tg.subs / tg.groups
	if group < tg.subs%tg.groups {
		n++
	}
	return int64(n)
}

// saturation is the result of publishing as fast as the target delivers.
type saturation struct {
	deliveries     float64 // per second
	publications   float64 // per second
	framesPerWrite float64 // 0 when the target does not count
	cpuPerDelivery float64 // nanoseconds of process CPU (user+system, server and clients) per delivery
}

// cpuTime returns the CPU time this process used so far. Unlike wall-clock
// rates, it barely moves when other work shares the machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// saturate publishes pubs publications round-robin over the channels, never
// more than window publications' worth of deliveries per subscriber ahead of
// what the subscribers received (so queues stay far below their byte cap),
// and returns the rates from the first publication to the last delivery.
func (tg *target) saturate(pubs, window int) (saturation, error) {
	f := tg.fleet
	base := f.Delivered()
	frames0, writes0 := tg.framing()
	ahead := int64(window) * int64(tg.subs)
	var expected int64
	start, cpu0 := time.Now(), cpuTime()
	for i := range pubs {
		for expected-(f.Delivered()-base) > ahead {
			time.Sleep(50 * time.Microsecond)
		}
		g := i % tg.groups
		if err := tg.publish(g, uint64(i)); err != nil {
			return saturation{}, err
		}
		expected += tg.perPub(g)
	}
	if err := tg.await(base + expected); err != nil {
		return saturation{}, err
	}
	el := time.Since(start).Seconds()
	s := saturation{deliveries: float64(expected) / el, publications: float64(pubs) / el,
		cpuPerDelivery: float64(cpuTime()-cpu0) / float64(expected)}
	if frames1, writes1 := tg.framing(); writes1 > writes0 {
		s.framesPerWrite = (frames1 - frames0) / (writes1 - writes0)
	}
	return s, nil
}

// await waits until the subscribers received want frames in total.
func (tg *target) await(want int64) error {
	deadline := time.Now().Add(60 * time.Second)
	for tg.fleet.Delivered() < want {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %d of %d deliveries arrived", tg.name, tg.fleet.Delivered(), want)
		}
		time.Sleep(100 * time.Microsecond)
	}
	return nil
}

// paced publishes at rate publications per second for d, round-robin over the
// channels, and returns the publish→receive latencies.
func (tg *target) paced(rate float64, d time.Duration) (*bench.Histogram, error) {
	f := tg.fleet
	base := f.Delivered()
	h := f.Measure()
	defer f.StopMeasuring()
	var (
		expected int64
		sent     int
	)
	start := time.Now()
	for {
		el := time.Since(start)
		if el >= d {
			break
		}
		for due := int(el.Seconds() * rate); sent < due; sent++ {
			g := sent % tg.groups
			if err := tg.publish(g, uint64(sent)); err != nil {
				return nil, err
			}
			expected += tg.perPub(g)
		}
		time.Sleep(200 * time.Microsecond)
	}
	return h, tg.await(base + expected)
}

// TestPerfFanout measures, for one channel with -perf.subs subscribers and
// for -perf.rooms channels sharing them, the deliveries per second at
// saturation and the publish→deliver latency at half of Sori's saturating
// publication rate, for Sori and for the raw-TCP harness, in alternating
// rounds.
func TestPerfFanout(t *testing.T) {
	requirePerf(t)
	var shapes []shape
	for _, name := range strings.Split(*perfShapes, ",") {
		switch name {
		case "fanout":
			shapes = append(shapes, shape{"fanout", 1})
		case "rooms":
			shapes = append(shapes, shape{"rooms", *perfRooms})
		default:
			t.Fatalf("unknown shape %q", name)
		}
	}
	type row struct{ sat, p99 []float64 }
	results := map[string]*row{}
	get := func(k string) *row {
		if results[k] == nil {
			results[k] = &row{}
		}
		return results[k]
	}
	for round := range *perfCount {
		for _, sh := range shapes {
			pubs := *perfPubs
			if sh.groups > 1 {
				pubs *= sh.groups / 10 // keep the deliveries per round comparable
			}
			var soriRate float64
			for _, setup := range []func(testing.TB, int, int) *target{setupSori, setupRaw} {
				tg := setup(t, *perfSubs, sh.groups)
				// Warm up: pools, goroutines, TCP windows.
				if _, err := tg.saturate(pubs/10+1, *perfWindow); err != nil {
					tg.stop()
					t.Fatal(err)
				}
				sat, err := tg.saturate(pubs, *perfWindow)
				if err != nil {
					tg.stop()
					t.Fatal(err)
				}
				if tg.name == "sori" {
					soriRate = sat.publications
				}
				rate := soriRate * *perfLoad
				if *perfRate > 0 {
					rate = *perfRate
				}
				h, err := tg.paced(rate, *perfPace)
				tg.stop()
				if err != nil {
					t.Fatal(err)
				}
				l := h.Summary()
				key := sh.name + "/" + tg.name
				r := get(key)
				r.sat = append(r.sat, sat.deliveries)
				r.p99 = append(r.p99, float64(h.Quantile(0.99))/1e6)
				t.Logf("round %d %-14s saturation %9.0f deliveries/s (%7.1f pubs/s, %.1f frames/write, %.0f CPU ns/delivery) | at %.1f pubs/s: p50 %.2f ms p99 %.2f ms p999 %.2f ms max %.2f ms (%d samples)",
					round+1, key, sat.deliveries, sat.publications, sat.framesPerWrite, sat.cpuPerDelivery, rate,
					l.P50, l.P99, l.P999, l.Max, h.Count())
			}
		}
	}
	for _, sh := range shapes {
		s, r := results[sh.name+"/sori"], results[sh.name+"/raw-tcp"]
		ratios := make([]float64, len(s.sat))
		for i := range s.sat {
			ratios[i] = s.sat[i] / r.sat[i]
		}
		t.Logf("RESULT %s (%d subscribers, %d channels, median of %d): saturation sori %.0f/s, raw-tcp %.0f/s, sori/raw %.2f; p99 at the paced rate: sori %.2f ms, raw-tcp %.2f ms",
			sh.name, *perfSubs, sh.groups, *perfCount, median(s.sat), median(r.sat), median(ratios), median(s.p99), median(r.p99))
	}
}
