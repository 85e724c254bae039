package sfu

import "testing"

// step is one input of a forwarder test: either a target change or a packet,
// with the expected outcome.
type step struct {
	target *int // SetTarget before the packet, if set
	p      Packet
	ok     bool   // forwarded?
	sn     uint16 // expected out SN, if forwarded
	ts     uint32 // expected out TS, if forwarded
	sw     bool   // expected Switched
}

func tgt(l int) *int { return &l }

const ms = int64(1e6)

func runSteps(t *testing.T, f *Forwarder, steps []step) {
	t.Helper()
	for i, s := range steps {
		if s.target != nil {
			f.SetTarget(*s.target)
		}
		out, ok := f.Forward(s.p)
		if ok != s.ok {
			t.Fatalf("step %d (%+v): forwarded=%v, want %v", i, s.p, ok, s.ok)
		}
		if ok && (out.SN != s.sn || out.TS != s.ts || out.Switched != s.sw) {
			t.Fatalf("step %d (%+v): out %+v, want sn=%d ts=%d switched=%v", i, s.p, out, s.sn, s.ts, s.sw)
		}
	}
}

func TestForwarder(t *testing.T) {
	// Video at 90 kHz: 10 ms of wall clock is 900 ticks.
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"waits for a keyframe of the target layer", []step{
			{target: tgt(0), p: Packet{Layer: 0, SN: 10, TS: 1000}, ok: false},
			{p: Packet{Layer: 1, SN: 500, TS: 7000, Keyframe: true}, ok: false},
			{p: Packet{Layer: 0, SN: 11, TS: 1000, Keyframe: true}, ok: true, sn: 11, ts: 1000, sw: true},
			{p: Packet{Layer: 0, SN: 12, TS: 4000}, ok: true, sn: 12, ts: 4000},
		}},
		{"switch only at a keyframe of the target, contiguous SN", []step{
			{target: tgt(0), p: Packet{Layer: 0, SN: 100, TS: 9000, Keyframe: true, Arrival: 0}, ok: true, sn: 100, ts: 9000, sw: true},
			{target: tgt(2), p: Packet{Layer: 2, SN: 5000, TS: 123, Arrival: 5 * ms}, ok: false},
			{p: Packet{Layer: 0, SN: 101, TS: 12000, Arrival: 33 * ms}, ok: true, sn: 101, ts: 12000},
			{p: Packet{Layer: 1, SN: 700, TS: 50, Keyframe: true, Arrival: 34 * ms}, ok: false}, // not the target
			{p: Packet{Layer: 2, SN: 5001, TS: 3123, Keyframe: true, Arrival: 43 * ms}, ok: true, sn: 102, ts: 12000 + 900, sw: true},
			{p: Packet{Layer: 0, SN: 102, TS: 15000, Arrival: 44 * ms}, ok: false}, // old layer gone
			{p: Packet{Layer: 2, SN: 5002, TS: 3123, Arrival: 45 * ms}, ok: true, sn: 103, ts: 12900},
			{p: Packet{Layer: 2, SN: 5003, TS: 6123, Arrival: 78 * ms}, ok: true, sn: 104, ts: 15900},
		}},
		{"down-switch keeps TS monotonic even when the new layer's TS is behind", []step{
			{target: tgt(2), p: Packet{Layer: 2, SN: 1, TS: 4_000_000_000, Keyframe: true}, ok: true, sn: 1, ts: 4_000_000_000, sw: true},
			{target: tgt(0), p: Packet{Layer: 0, SN: 9, TS: 5, Keyframe: true, Arrival: 0}, ok: true, sn: 2, ts: 4_000_000_001, sw: true},
		}},
		{"SN and TS wrap around", []step{
			{target: tgt(0), p: Packet{Layer: 0, SN: 65534, TS: 4294967000, Keyframe: true}, ok: true, sn: 65534, ts: 4294967000, sw: true},
			{p: Packet{Layer: 0, SN: 65535, TS: 4294967295}, ok: true, sn: 65535, ts: 4294967295},
			{p: Packet{Layer: 0, SN: 0, TS: 2704}, ok: true, sn: 0, ts: 2704},
			{p: Packet{Layer: 0, SN: 1, TS: 5704}, ok: true, sn: 1, ts: 5704},
			{target: tgt(1), p: Packet{Layer: 1, SN: 65535, TS: 4294967295, Keyframe: true, Arrival: 1 * ms}, ok: true, sn: 2, ts: 5794, sw: true},
			{p: Packet{Layer: 1, SN: 0, TS: 2704}, ok: true, sn: 3, ts: 5794 + 2705},
		}},
		{"output wraps around across a switch", []step{
			{target: tgt(0), p: Packet{Layer: 0, SN: 65535, TS: 4294967295, Keyframe: true}, ok: true, sn: 65535, ts: 4294967295, sw: true},
			{target: tgt(1), p: Packet{Layer: 1, SN: 40, TS: 10, Keyframe: true, Arrival: 1 * ms}, ok: true, sn: 0, ts: 89, sw: true},
			{p: Packet{Layer: 1, SN: 41, TS: 3010}, ok: true, sn: 1, ts: 3089},
		}},
		{"padding is dropped without a hole", []step{
			{target: tgt(0), p: Packet{Layer: 0, SN: 10, TS: 100, Keyframe: true}, ok: true, sn: 10, ts: 100, sw: true},
			{p: Packet{Layer: 0, SN: 11, TS: 100, Padding: true}, ok: false},
			{p: Packet{Layer: 0, SN: 12, TS: 100, Padding: true}, ok: false},
			{p: Packet{Layer: 0, SN: 13, TS: 100, Padding: true}, ok: false},
			{p: Packet{Layer: 0, SN: 14, TS: 3100}, ok: true, sn: 11, ts: 3100},
			{p: Packet{Layer: 0, SN: 15, TS: 3100, Padding: true}, ok: false},
			{p: Packet{Layer: 0, SN: 16, TS: 6100}, ok: true, sn: 12, ts: 6100},
		}},
		{"a late packet before a padding drop keeps its own number", []step{
			{target: tgt(0), p: Packet{Layer: 0, SN: 10, TS: 100, Keyframe: true}, ok: true, sn: 10, ts: 100, sw: true},
			// 11 is late; 12 is padding; 13 follows.
			{p: Packet{Layer: 0, SN: 12, TS: 100, Padding: true}, ok: false},
			{p: Packet{Layer: 0, SN: 13, TS: 3100}, ok: true, sn: 12, ts: 3100},
			{p: Packet{Layer: 0, SN: 11, TS: 100}, ok: true, sn: 11, ts: 100},
			{p: Packet{Layer: 0, SN: 14, TS: 3100}, ok: true, sn: 13, ts: 3100},
		}},
		{"a hole in the source stays a hole; reordering keeps numbers", []step{
			{target: tgt(0), p: Packet{Layer: 0, SN: 10, TS: 100, Keyframe: true}, ok: true, sn: 10, ts: 100, sw: true},
			{p: Packet{Layer: 0, SN: 13, TS: 100}, ok: true, sn: 13, ts: 100},
			{p: Packet{Layer: 0, SN: 12, TS: 100}, ok: true, sn: 12, ts: 100},
			{p: Packet{Layer: 0, SN: 14, TS: 100}, ok: true, sn: 14, ts: 100},
		}},
		{"duplicates and packets from before the switch are dropped", []step{
			{target: tgt(0), p: Packet{Layer: 0, SN: 10, TS: 100, Keyframe: true}, ok: true, sn: 10, ts: 100, sw: true},
			{p: Packet{Layer: 0, SN: 10, TS: 100}, ok: false},
			{p: Packet{Layer: 0, SN: 12, TS: 100}, ok: true, sn: 12, ts: 100},
			{p: Packet{Layer: 0, SN: 12, TS: 100}, ok: false},
			{p: Packet{Layer: 0, SN: 9, TS: 100}, ok: false},
			{p: Packet{Layer: 0, SN: 11, TS: 100}, ok: true, sn: 11, ts: 100},
			{p: Packet{Layer: 0, SN: 11, TS: 100}, ok: false},
		}},
		{"a switch continues after numbers reserved by a padding jump", []step{
			{target: tgt(0), p: Packet{Layer: 0, SN: 10, TS: 100, Keyframe: true}, ok: true, sn: 10, ts: 100, sw: true},
			// 11 and 12 are lost or late; 13 is padding. 11 and 12 keep
			// their numbers, so the switch goes on at 13, not 11.
			{p: Packet{Layer: 0, SN: 13, TS: 100, Padding: true}, ok: false},
			{target: tgt(1), p: Packet{Layer: 1, SN: 70, TS: 5, Keyframe: true, Arrival: 1 * ms}, ok: true, sn: 13, ts: 190, sw: true},
			{p: Packet{Layer: 0, SN: 11, TS: 100}, ok: false},
		}},
		{"pause and resume continue the numbering", []step{
			{target: tgt(1), p: Packet{Layer: 1, SN: 10, TS: 100, Keyframe: true, Arrival: 0}, ok: true, sn: 10, ts: 100, sw: true},
			{target: tgt(-1), p: Packet{Layer: 1, SN: 11, TS: 200, Keyframe: true, Arrival: 1 * ms}, ok: false},
			{target: tgt(1), p: Packet{Layer: 1, SN: 12, TS: 300, Arrival: 2 * ms}, ok: false},
			{p: Packet{Layer: 1, SN: 13, TS: 400, Keyframe: true, Arrival: 100 * ms}, ok: true, sn: 11, ts: 100 + 9000, sw: true},
		}},
		{"a restarted publisher stream resyncs at a keyframe", []step{
			{target: tgt(0), p: Packet{Layer: 0, SN: 30000, TS: 100, Keyframe: true}, ok: true, sn: 30000, ts: 100, sw: true},
			{p: Packet{Layer: 0, SN: 30001, TS: 200}, ok: true, sn: 30001, ts: 200},
			{p: Packet{Layer: 0, SN: 5, TS: 9, Arrival: 0}, ok: false},
			{p: Packet{Layer: 0, SN: 6, TS: 9, Keyframe: true, Arrival: 0}, ok: true, sn: 30002, ts: 201, sw: true},
			{p: Packet{Layer: 0, SN: 7, TS: 3009}, ok: true, sn: 30003, ts: 3201},
		}},
		{"audio: every packet is a switch point", []step{
			{target: tgt(0), p: Packet{Layer: 0, SN: 7, TS: 960, Keyframe: true}, ok: true, sn: 7, ts: 960, sw: true},
			{p: Packet{Layer: 0, SN: 8, TS: 1920, Keyframe: true}, ok: true, sn: 8, ts: 1920},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { runSteps(t, NewForwarder(90000), tc.steps) })
	}
}

func TestForwarderNACKMapping(t *testing.T) {
	f := NewForwarder(90000)
	f.SetTarget(0)
	type fwd struct {
		layer int
		in    uint16
		out   Output
	}
	var sent []fwd
	send := func(p Packet) {
		if out, ok := f.Forward(p); ok {
			sent = append(sent, fwd{p.Layer, p.SN, out})
		}
	}
	send(Packet{Layer: 0, SN: 65530, TS: 1, Keyframe: true})
	for sn := uint16(65531); sn != 20; sn++ {
		send(Packet{Layer: 0, SN: sn, TS: 1, Padding: sn%7 == 0})
	}
	f.SetTarget(2)
	send(Packet{Layer: 2, SN: 9000, TS: 5, Keyframe: true, Arrival: 10 * ms})
	for sn := uint16(9001); sn < 9040; sn++ {
		send(Packet{Layer: 2, SN: sn, TS: 5})
	}
	if len(sent) < 50 {
		t.Fatalf("only %d packets forwarded", len(sent))
	}
	for _, s := range sent {
		m, ok := f.Lookup(s.out.SN)
		if !ok || m.Layer != s.layer || m.InSN != s.in || m.Out.SN != s.out.SN || m.Out.TS != s.out.TS {
			t.Fatalf("Lookup(%d) = %+v %v, want layer %d in %d ts %d", s.out.SN, m, ok, s.layer, s.in, s.out.TS)
		}
	}
	if _, ok := f.Lookup(sent[len(sent)-1].out.SN + 1); ok {
		t.Fatal("Lookup found a packet that was never forwarded")
	}
	// A NACK for an out SN from long ago (overwritten history) is not found.
	for sn := uint16(9040); sn < 9040+historySize; sn++ {
		send(Packet{Layer: 2, SN: sn, TS: 5})
	}
	if _, ok := f.Lookup(sent[0].out.SN); ok {
		t.Fatal("Lookup found a packet older than the history")
	}
}

func TestForwarderNeedsKeyframe(t *testing.T) {
	f := NewForwarder(90000)
	if _, ok := f.NeedsKeyframe(); ok {
		t.Fatal("a paused forwarder wants a keyframe")
	}
	f.SetTarget(1)
	if l, ok := f.NeedsKeyframe(); !ok || l != 1 {
		t.Fatalf("NeedsKeyframe = %d %v, want 1 true", l, ok)
	}
	f.Forward(Packet{Layer: 1, SN: 1, Keyframe: true})
	if _, ok := f.NeedsKeyframe(); ok || f.Current() != 1 {
		t.Fatal("still wants a keyframe after switching")
	}
	f.SetTarget(0)
	if l, ok := f.NeedsKeyframe(); !ok || l != 0 || f.Current() != 1 {
		t.Fatalf("after SetTarget(0): NeedsKeyframe = %d %v, current %d", l, ok, f.Current())
	}
}

// TestForwarderPad: padding the SFU sends on its own takes the SNs right
// after the newest forwarded packet; later packets continue after it, a late
// packet from before keeps its own number, a NACK maps as before, and a
// switch continues after the padding too.
func TestForwarderPad(t *testing.T) {
	f := NewForwarder(90000)
	if _, _, ok := f.Pad(3); ok {
		t.Fatal("padded before the first packet")
	}
	runSteps(t, f, []step{
		{target: tgt(0), p: Packet{Layer: 0, SN: 65534, TS: 100, Keyframe: true}, ok: true, sn: 65534, ts: 100, sw: true},
		{p: Packet{Layer: 0, SN: 0, TS: 200}, ok: true, sn: 0, ts: 200}, // 65535 is late
	})
	first, ts, ok := f.Pad(3)
	if !ok || first != 1 || ts != 200 {
		t.Fatalf("Pad(3) = %d, %d, %v; want 1, 200, true", first, ts, ok)
	}
	runSteps(t, f, []step{
		{p: Packet{Layer: 0, SN: 1, TS: 300}, ok: true, sn: 4, ts: 300},
		{p: Packet{Layer: 0, SN: 65535, TS: 150}, ok: true, sn: 65535, ts: 150}, // late, before the padding
	})
	if first, _, _ := f.Pad(2); first != 5 {
		t.Fatalf("second Pad starts at %d, want 5", first)
	}
	runSteps(t, f, []step{
		{p: Packet{Layer: 0, SN: 2, TS: 400}, ok: true, sn: 7, ts: 400},
	})
	if m, ok := f.Lookup(4); !ok || m.InSN != 1 {
		t.Fatalf("Lookup(4) = %+v, %v; want in SN 1", m, ok)
	}
	if _, ok := f.Lookup(5); ok {
		t.Fatal("a padding SN maps to a publisher packet")
	}
	f.Pad(1) // 8
	runSteps(t, f, []step{
		{target: tgt(1), p: Packet{Layer: 1, SN: 900, TS: 5000, Keyframe: true}, ok: true, sn: 9, ts: 401, sw: true},
	})
	f.SetTarget(-1)
	if _, _, ok := f.Pad(1); ok {
		t.Fatal("padded while paused")
	}
}
