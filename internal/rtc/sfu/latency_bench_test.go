package sfu

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// The latency benchmark uses the same child-process servers as
// TestForwardingCostVsPionBroadcast (bench_test.go): Sori's SFU or the bare
// pion broadcast forwarder, with real pion peers over loopback in this
// process. The publisher writes the top simulcast layer at a settable,
// paced packet rate, and each top-layer packet carries the time it was
// handed to the publisher's pion track (WriteRTP); each subscriber reads
// that time back from the payload when ReadRTP returns the packet. The
// latency is therefore publisher WriteRTP → server → subscriber ReadRTP:
// both pion client stacks (interceptors, SRTP, loopback UDP) are in it for
// both servers, so the difference between the two is the servers'.

// latEpoch is the clock both ends of a latency sample read: publisher and
// subscribers share this process, so time.Since(latEpoch) is one
// monotonic clock.
var latEpoch = time.Now()

// Top-layer payload layout written by latPub: bytes 0–1 are the VP8
// payload descriptor and key/delta bit, 2 the layer, 3–6 the frame number
// (as publish writes them), 7–14 the send time in ns since latEpoch, 15 the
// measuring phase.
const (
	latSentAt  = 7
	latPhaseAt = 15
	latTopSize = 1000
)

// latRecorder collects the latency samples and arrival counts of every
// subscriber, per phase.
type latRecorder struct {
	mu      sync.Mutex
	samples map[byte][]int64 // ns, per phase
}

func (r *latRecorder) add(phase byte, ns int64) {
	r.mu.Lock()
	r.samples[phase] = append(r.samples[phase], ns)
	r.mu.Unlock()
}

func (r *latRecorder) count(phases ...byte) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, p := range phases {
		n += len(r.samples[p])
	}
	return n
}

// quantiles returns p50, p99 and max of the phases' samples, in ms.
func (r *latRecorder) quantiles(phases ...byte) (p50, p99, max float64) {
	r.mu.Lock()
	var all []int64
	for _, p := range phases {
		all = append(all, r.samples[p]...)
	}
	r.mu.Unlock()
	if len(all) == 0 {
		return 0, 0, 0
	}
	slices.Sort(all)
	q := func(f float64) float64 { return float64(all[int(f*float64(len(all)-1))]) / 1e6 }
	return q(0.5), q(0.99), q(1)
}

// latReceive replaces a subscriber's track handler: it records the
// latency of every top-layer packet and reads the rest.
func latReceive(rec *latRecorder, top *atomic.Int64) func(*webrtc.TrackRemote, *webrtc.RTPReceiver) {
	return func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		video := tr.Kind() == webrtc.RTPCodecTypeVideo
		go func() {
			for {
				p, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				now := int64(time.Since(latEpoch))
				if video && len(p.Payload) > latPhaseAt && p.Payload[2] == 2 {
					if sent := int64(binary.BigEndian.Uint64(p.Payload[latSentAt:])); sent > 0 {
						top.Add(1)
						rec.add(p.Payload[latPhaseAt], now-sent)
					}
				}
			}
		}()
	}
}

// latPub is a publisher like publish (three VP8 simulcast layers and Opus,
// keyframes on PLI), except that the top layer runs at rate packets/s,
// paced every 2 ms, in frames of rate/30 packets, and each of its packets
// carries its send time and phase.
type latPub struct {
	rate  atomic.Int64
	phase atomic.Uint32
	sent  [256]atomic.Int64 // top-layer packets written per phase
}

func (lp *latPub) start(c *testClient) {
	t := c.t
	t.Helper()
	rids := []string{"q", "h", "f"}
	var vtracks []*webrtc.TrackLocalStaticRTP
	for _, rid := range rids {
		tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
			c.videoID, c.id, webrtc.WithRTPStreamID(rid))
		if err != nil {
			t.Fatal(err)
		}
		vtracks = append(vtracks, tr)
	}
	vsender, err := c.pc.AddTrack(vtracks[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range vtracks[1:] {
		if err := vsender.AddEncoding(tr); err != nil {
			t.Fatal(err)
		}
	}
	atrack, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", c.id)
	if err != nil {
		t.Fatal(err)
	}
	asender, err := c.pc.AddTrack(atrack)
	if err != nil {
		t.Fatal(err)
	}
	c.offer()
	select {
	case <-c.connected:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: publisher never connected", c.id)
	}
	ext := func(s *webrtc.RTPSender, uri string) uint8 {
		for _, e := range s.GetParameters().HeaderExtensions {
			if e.URI == uri {
				return uint8(e.ID)
			}
		}
		t.Fatalf("%s: extension %s not negotiated", c.id, uri)
		return 0
	}
	var vmid string
	for _, tr := range c.pc.GetTransceivers() {
		if tr.Sender() == vsender {
			vmid = tr.Mid()
		}
	}
	midID, ridID, levelID := ext(vsender, sdp.SDESMidURI), ext(vsender, sdp.SDESRTPStreamIDURI), ext(asender, sdp.AudioLevelURI)
	var needKey [maxLayers]atomic.Bool
	for i, rid := range rids {
		go func() {
			for {
				pkts, _, err := vsender.ReadSimulcastRTCP(rid)
				if err != nil {
					return
				}
				for _, p := range pkts {
					if _, ok := p.(*rtcp.PictureLossIndication); ok {
						needKey[i].Store(true)
					}
				}
			}
		}()
	}
	go func() {
		pace := time.NewTicker(2 * time.Millisecond)
		at := time.NewTicker(20 * time.Millisecond)
		defer pace.Stop()
		defer at.Stop()
		var sn [maxLayers]uint16
		var asn uint16
		var frame, aframe uint32
		var key bool
		k, perFrame := 0, 0 // top-layer packet within the frame, packets in it
		due, last := 0.0, time.Now()
		write := func(i, size int, first, marker, key bool, stamp bool) {
			pl := make([]byte, size)
			if first {
				pl[0] = 0x10
			}
			if !key {
				pl[1] = 0x01
			}
			pl[2] = byte(i)
			binary.BigEndian.PutUint32(pl[3:], frame)
			p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: sn[i], Timestamp: frame * 3000, Marker: marker}, Payload: pl}
			sn[i]++
			_ = p.Header.SetExtension(midID, []byte(vmid))
			_ = p.Header.SetExtension(ridID, []byte(rids[i]))
			if stamp {
				ph := lp.phase.Load()
				pl[latPhaseAt] = byte(ph)
				binary.BigEndian.PutUint64(pl[latSentAt:], uint64(time.Since(latEpoch)))
				if vtracks[i].WriteRTP(p) == nil {
					lp.sent[byte(ph)].Add(1)
				}
				return
			}
			_ = vtracks[i].WriteRTP(p)
		}
		for {
			select {
			case <-c.done:
				return
			case <-at.C:
				aframe++
				p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: asn, Timestamp: aframe * 960}, Payload: make([]byte, 80)}
				asn++
				lv, _ := (&rtp.AudioLevelExtension{Level: 20, Voice: true}).Marshal()
				_ = p.Header.SetExtension(levelID, lv)
				_ = atrack.WriteRTP(p)
			case now := <-pace.C:
				rate := float64(lp.rate.Load())
				due += rate * now.Sub(last).Seconds()
				last = now
				// After a stall (the machine is shared) catch up at most
				// 50 ms worth at once rather than in one huge burst.
				due = min(due, max(rate/20, 1))
				for ; due >= 1; due-- {
					if k == 0 {
						// A new frame: the lower layers send theirs
						// (one 300- and one 900-byte packet) at its start.
						frame++
						perFrame = max(1, int(rate)/30)
						for i, size := range []int{300, 900} {
							write(i, size, true, true, frame%60 == 1 || needKey[i].Swap(false), false)
						}
						key = frame%60 == 1 || needKey[2].Swap(false)
					}
					write(2, latTopSize, k == 0, k == perFrame-1, key, true)
					if k++; k == perFrame {
						k = 0
					}
				}
			}
		}
	}()
}

// benchRounds is SORI_SFU_BENCH_ROUNDS, or def.
func benchRounds(def int) int {
	var n int
	if _, err := fmt.Sscan(os.Getenv("SORI_SFU_BENCH_ROUNDS"), &n); err == nil && n > 0 {
		return n
	}
	return def
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// latRig is one server (child process) with a latency publisher and n
// subscribers connected to it, the subscribers all on the top layer.
type latRig struct {
	t     *testing.T
	mode  string
	n     int
	child *benchChild
	pub   *latPub
	rec   *latRecorder
	top   []*atomic.Int64 // top-layer packets per subscriber
	phase byte
}

func newLatRig(t *testing.T, mode string, n int, rate int64) *latRig {
	r := &latRig{t: t, mode: mode, n: n, child: startBenchChild(t, mode), pub: &latPub{}, rec: &latRecorder{samples: map[byte][]int64{}}}
	for i := 0; i < n; i++ {
		cl := r.child.client(fmt.Sprintf("sub%d", i))
		top := &atomic.Int64{}
		r.top = append(r.top, top)
		cl.pc.OnTrack(latReceive(r.rec, top))
		r.child.register(cl)
		// A REMB far above any rate used here: the subscribers stay on
		// the top layer whatever the load does to delay-based estimates.
		cl.capDownlink(1e9)
		cl.subscribe()
	}
	pub := r.child.client("pub")
	r.child.register(pub)
	r.pub.rate.Store(rate)
	r.pub.start(pub)
	deadline := time.Now().Add(30 * time.Second)
	for i, top := range r.top {
		for top.Load() < 50 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: subscriber %d never received the top layer", mode, i)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return r
}

// latStep is one offered rate: counts and latencies of its two halves.
type latStep struct {
	rate                       int64 // top-layer packets/s offered by the publisher
	sent, expected, delivered  int64
	p50First, p50, p99, maxLat float64 // ms; p50/p99/max over the whole step
	keptUp                     bool
	cpuNsPerPkt, fwdPerSec     float64
}

// step offers rate for d and reports whether the server kept up, with the
// criterion of `sori bench --find-rate` (internal/tools/bench/saturate.go):
// the publisher wrote at least 95% of the offered packets, at least 99% of
// the expected deliveries arrived within the step plus half a step, and
// the median latency of the second half is at most twice the first half's
// plus 2 ms (a growing queue shows in the median before anything is lost).
func (r *latRig) step(rate int64, d time.Duration) latStep {
	r.pub.rate.Store(rate)
	// Let the rate settle (and what was queued at the old one drain)
	// before counting.
	r.phase++
	r.pub.phase.Store(uint32(r.phase))
	time.Sleep(500 * time.Millisecond)
	first, second := r.phase+1, r.phase+2
	r.phase += 2
	a := r.child.sample()
	r.pub.phase.Store(uint32(first))
	time.Sleep(d / 2)
	r.pub.phase.Store(uint32(second))
	time.Sleep(d / 2)
	r.phase++
	r.pub.phase.Store(uint32(r.phase))
	b := r.child.sample()
	st := latStep{rate: rate}
	st.sent = r.pub.sent[first].Load() + r.pub.sent[second].Load()
	st.expected = st.sent * int64(r.n)
	for end := time.Now().Add(d / 2); int64(r.rec.count(first, second)) < st.expected && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	st.delivered = int64(r.rec.count(first, second))
	st.p50First, _, _ = r.rec.quantiles(first)
	p50Second, _, _ := r.rec.quantiles(second)
	st.p50, st.p99, st.maxLat = r.rec.quantiles(first, second)
	st.keptUp = float64(st.sent) >= 0.95*float64(rate)*d.Seconds() && st.expected > 0 &&
		float64(st.delivered) >= 0.99*float64(st.expected) && p50Second <= 2*st.p50First+2
	if fwd := b.Forwarded - a.Forwarded; fwd > 0 {
		st.cpuNsPerPkt = float64(b.CPUNanos-a.CPUNanos) / float64(fwd)
		st.fwdPerSec = float64(fwd) / d.Seconds()
	}
	r.t.Logf("%s: top layer %d pkt/s × %d subscribers: delivered %d of %d, p50 %.2f ms (halves %.2f → %.2f), p99 %.2f ms, max %.1f ms, kept up %v; server %.0f fwd/s, %.1f µs CPU/pkt; load %s",
		r.mode, rate, r.n, st.delivered, st.expected, st.p50, st.p50First, p50Second, st.p99, st.maxLat, st.keptUp, st.fwdPerSec, st.cpuNsPerPkt/1000, loadAvg())
	return st
}

// saturate searches the highest top-layer rate that keeps up, going up
// from start by factors of √2 and stopping at the first rate that does
// not, twice in a row (resolution 1.41×; one stall of the shared machine
// does not end the search). It only goes up: after an overload the queues of
// the clients, the sockets and the server take longer than a step to
// drain, which would spoil any step after it, so every measurement at a
// chosen rate runs in a fresh rig.
func (r *latRig) saturate(start int64, d time.Duration) int64 {
	var kept int64
	for rate := float64(start); rate < 1e5; rate *= math.Sqrt2 {
		ok := r.step(int64(rate), d).keptUp
		if !ok {
			ok = r.step(int64(rate), d).keptUp // once more
		}
		if !ok {
			break
		}
		kept = int64(rate)
	}
	return kept
}

// TestForwardingLatencyVsPionBroadcast finds the SFU's saturating forward
// rate (8 subscribers; the top simulcast layer's packet rate raised until
// the rig stops keeping up), then measures the latency of Sori's SFU and
// of the bare pion forwarder at 50% of it, each in a fresh child process,
// in the same round; then the bare forwarder's own saturating rate, for the
// record. Rounds are repeated and the medians of the per-round figures
// reported. It asserts nothing about speed (the machine is shared); it
// runs only with SORI_SFU_BENCH=1.
func TestForwardingLatencyVsPionBroadcast(t *testing.T) {
	if os.Getenv("SORI_SFU_BENCH") == "" {
		t.Skip("set SORI_SFU_BENCH=1 to measure forwarding latency")
	}
	const subs, start = 8, 300
	rounds := benchRounds(3)
	stepDur, window := 3*time.Second, 6*time.Second
	var ratioP50, ratioP99, ratioCPU, sfuP50, sfuP99, sfuMax, bareP50, bareP99, bareMax, sats, bareSats, sfuCPU, bareCPU []float64
	for round := 0; round < rounds; round++ {
		var sat int64
		var sfu, bare latStep
		t.Run(fmt.Sprintf("search-%d", round), func(t *testing.T) {
			sat = newLatRig(t, "sfu", subs, start).saturate(start, stepDur)
			t.Logf("sfu: saturating rate %d top-layer pkt/s × %d subscribers = %d forwarded video pkt/s; load %s", sat, subs, sat*subs, loadAvg())
		})
		if sat == 0 {
			continue
		}
		modes := []string{"sfu", "bare"}
		if round%2 == 1 {
			modes = []string{"bare", "sfu"}
		}
		for _, mode := range modes {
			t.Run(fmt.Sprintf("%s-%d", mode, round), func(t *testing.T) {
				st := newLatRig(t, mode, subs, sat/2).step(sat/2, window)
				if st.delivered == 0 {
					t.Logf("%s forwarded no video at %d pkt/s", mode, sat/2)
				}
				if mode == "sfu" {
					sfu = st
				} else {
					bare = st
				}
			})
		}
		t.Run(fmt.Sprintf("bare-search-%d", round), func(t *testing.T) {
			bsat := newLatRig(t, "bare", subs, start).saturate(start, stepDur)
			t.Logf("bare: saturating rate %d top-layer pkt/s (sfu: %d); load %s", bsat, sat, loadAvg())
			bareSats = append(bareSats, float64(bsat*subs))
		})
		if sfu.delivered == 0 || bare.delivered == 0 {
			continue
		}
		sats = append(sats, float64(sat*subs))
		sfuP50, sfuP99, sfuMax = append(sfuP50, sfu.p50), append(sfuP99, sfu.p99), append(sfuMax, sfu.maxLat)
		bareP50, bareP99, bareMax = append(bareP50, bare.p50), append(bareP99, bare.p99), append(bareMax, bare.maxLat)
		ratioP50, ratioP99 = append(ratioP50, sfu.p50/bare.p50), append(ratioP99, sfu.p99/bare.p99)
		if bare.cpuNsPerPkt > 0 && sfu.cpuNsPerPkt > 0 {
			ratioCPU = append(ratioCPU, sfu.cpuNsPerPkt/bare.cpuNsPerPkt)
			sfuCPU, bareCPU = append(sfuCPU, sfu.cpuNsPerPkt), append(bareCPU, bare.cpuNsPerPkt)
		}
	}
	med := func(v []float64) float64 {
		if len(v) == 0 {
			return 0
		}
		v = slices.Clone(v)
		slices.Sort(v)
		return (v[(len(v)-1)/2] + v[len(v)/2]) / 2
	}
	t.Logf("medians of %d rounds: saturating forwarded video pkt/s: sfu %.0f, bare %.0f; at 50%% of the sfu's: p50 / p99 / max ms: sfu %.2f / %.2f / %.1f, bare %.2f / %.2f / %.1f; ratio sfu/bare p50 %.2f, p99 %.2f; CPU per forwarded packet sfu %.1f µs, bare %.1f µs, ratio %.2f",
		len(sats), med(sats), med(bareSats), med(sfuP50), med(sfuP99), med(sfuMax), med(bareP50), med(bareP99), med(bareMax), med(ratioP50), med(ratioP99),
		med(sfuCPU)/1000, med(bareCPU)/1000, med(ratioCPU))
}
