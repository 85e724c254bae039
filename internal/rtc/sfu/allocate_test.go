package sfu

import (
	"log/slog"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// TestAllocateKeepSlackAndProbing: the allocator keeps a layer through one
// GCC-sized back-off (rate <= 1.2x the estimate), drops it below that, and
// probes a track held below a layer only on a GCC estimate, not on REMB
// and not right after the estimate fell.
func TestAllocateKeepSlackAndProbing(t *testing.T) {
	s := &SFU{cfg: Config{InitialBitrate: 300_000, UpgradeHold: time.Second}}
	r := &Room{sfu: s, log: slog.New(slog.DiscardHandler)}
	p := &Peer{room: r, downs: map[*upTrack]*DownTrack{}, feedback: true}
	u := &upTrack{room: r, pub: &Peer{id: "a"}, kind: webrtc.RTPCodecTypeVideo, id: "a/camera"}
	for i, rate := range []uint64{100_000, 500_000, 1_000_000} {
		l := &layer{}
		l.bitrate.Store(rate)
		l.lastPLI.Store(time.Now().Add(time.Hour).UnixNano()) // no PLI: there is no publisher
		u.layers[i] = l
	}
	d := &DownTrack{up: u, sub: p, fwd: NewForwarder(90000)}
	d.fwd.SetTarget(1)
	p.downs[u] = d
	now := time.Now()
	step := func(remb uint64) (int, int64) {
		now = now.Add(100 * time.Millisecond)
		p.remb, p.rembAt = remb, now
		p.allocate(now)
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.fwd.Target(), d.padRate
	}
	if l, pad := step(450_000); l != 1 || pad != 0 {
		t.Fatalf("at 450 kbit/s (REMB): layer %d, padding %d; want the middle layer kept (500 <= 1.2x450), no probe", l, pad)
	}
	if l, _ := step(400_000); l != 0 {
		t.Fatalf("at 400 kbit/s: layer %d, want the low one (500 > 1.2x400)", l)
	}
	// REMB gone: the estimate is GCC's (here the initial 300 kbit/s), and
	// the estimate fell by more than 10% just now: no probe yet.
	if _, pad := step(0); pad != 0 {
		t.Fatalf("probing %d bit/s right after the estimate fell", pad)
	}
	now = now.Add(probeBackoff)
	if l, pad := step(0); l != 0 || pad != 150_000 {
		t.Fatalf("held on layer %d with padding %d, want layer 0 and a probe of half the 300 kbit/s estimate", l, pad)
	}
}
