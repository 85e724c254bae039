package sfu

import (
	"fmt"
	"testing"
)

// fuzzLayer generates one layer's publisher stream: sequence numbers from an
// extended counter (so that they wrap), timestamps a monotonic function of it
// (three packets per frame, 3,000 ticks per frame), as real encoders do.
type fuzzLayer struct {
	snBase uint16
	tsBase uint32
	ext    int64 // newest extended SN sent
}

func (l *fuzzLayer) packet(ext int64) (uint16, uint32) {
	return l.snBase + uint16(ext), l.tsBase + uint32(ext/3)*3000
}

// checkForwarder drives a Forwarder with the packet sequence encoded in data
// and fails t at the first broken invariant:
//
//   - nothing is forwarded before a switch; a switch happens only on a
//     non-padding keyframe of the target layer; afterwards only that layer is
//     forwarded;
//   - padding is never forwarded;
//   - no out SN is forwarded twice;
//   - the newest out SN advances by exactly 1 at a switch, and otherwise by
//     the publisher's SN advance (less only if padding was dropped): no gap
//     is introduced;
//   - the out TS advances at a switch (never backwards) and otherwise keeps a
//     constant offset to the publisher's TS, so it is as monotonic as the
//     input;
//   - a late packet comes from after the switch that started its layer (in
//     the publisher's extended numbering) and keeps the TS offset;
//   - Lookup maps every forwarded out SN back to its layer and in SN.
func checkForwarder(t *testing.T, data []byte) {
	if len(data) > 3*5000 {
		data = data[:3*5000] // stay below 65,536 outputs: out SNs are then unique
	}
	layers := [3]fuzzLayer{{snBase: 65500, tsBase: 4294960000}, {snBase: 100, tsBase: 77}, {snBase: 32760, tsBase: 1 << 31}}
	f := NewForwarder(90000)
	var (
		now               int64
		started           bool
		curLayer          = -1
		maxOut, maxIn     uint16
		maxOutTS, maxInTS uint32
		switchOut         uint16
		switchExt         int64               // the publisher's extended SN of the switch packet
		padded            = map[uint16]bool{} // padding SNs of the current layer
		newerDropped      bool                // a packet after maxIn was not forwarded
		droppedTop        uint16              // the newest of them
		topTS             uint32              // highest out TS forwarded
		emitted           = map[uint16]bool{}
		i                 int
	)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("event %d: %s", i/3, fmt.Sprintf(format, args...))
	}
	for i = 0; i+3 <= len(data); i += 3 {
		b0, b1, b2 := data[i], data[i+1], data[i+2]
		now += int64(b2) * 100_000
		layer := int(b0 & 3)
		if layer == 3 {
			f.SetTarget(int(b1%4) - 1)
			if f.Target() < 0 {
				curLayer = -1
			}
			continue
		}
		l := &layers[layer]
		var ext int64
		switch mode := (b0 >> 4) & 7; mode {
		case 4: // a hole
			ext = l.ext + int64(b1%20) + 2
		case 5: // late
			ext = l.ext - int64(b1) - 1
		case 6: // duplicate of the newest
			ext = l.ext
		case 7: // the publisher restarts its numbering
			ext = l.ext + 40000 + int64(b1)
		default:
			ext = l.ext + 1
		}
		if ext > l.ext {
			l.ext = ext
		}
		sn, ts := l.packet(ext)
		p := Packet{Layer: layer, SN: sn, TS: ts, Keyframe: b0&4 != 0, Padding: b0&8 != 0, Arrival: now}
		if (b0>>4)&7 == 7 {
			// A restart carries media. A padding-only packet 40,000 numbers
			// on is ambiguous in 16 bits (it reads as 25,536 back), and the
			// forwarder's numbering may then move by whole half-ranges
			// without an output the test could check against.
			p.Padding = false
		}
		target := f.Target()
		out, ok := f.Forward(p)
		if !ok {
			if layer == curLayer && int16(sn-maxIn) > 0 {
				if !newerDropped || int16(sn-droppedTop) > 0 {
					droppedTop = sn
				}
				newerDropped = true
				if p.Padding {
					padded[sn] = true
				}
			}
			continue
		}
		if p.Padding {
			fail("padding forwarded: %+v", p)
		}
		if emitted[out.SN] {
			fail("out SN %d forwarded twice (%+v)", out.SN, p)
		}
		emitted[out.SN] = true
		if m, found := f.Lookup(out.SN); !found || m.Layer != layer || m.InSN != sn || m.Out.TS != out.TS {
			fail("Lookup(%d) = %+v %v, want layer %d in %d ts %d", out.SN, m, found, layer, sn, out.TS)
		}
		if out.Switched {
			if !p.Keyframe || layer != target {
				fail("switched on %+v (keyframe %v) with target %d", p, p.Keyframe, target)
			}
			if started {
				// One more than the newest, unless newer packets of the
				// old layer were dropped or not yet seen: their numbers
				// stay reserved for late arrivals (holes, as in the source).
				if d := int16(out.SN - maxOut); d < 1 || (!newerDropped && d != 1) {
					fail("switch to layer %d: out SN %d after %d (newer dropped %v)", layer, out.SN, maxOut, newerDropped)
				}
				if d := out.TS - topTS; d == 0 || d >= 1<<31 {
					fail("switch to layer %d: out TS %d after %d", layer, out.TS, topTS)
				}
			}
			started, curLayer, topTS = true, layer, out.TS
			maxOut, maxIn, maxOutTS, maxInTS, switchOut, switchExt = out.SN, sn, out.TS, ts, out.SN, ext
			clear(padded)
			newerDropped = false
			continue
		}
		if int32(out.TS-topTS) > 0 {
			topTS = out.TS
		}
		if !started || layer != curLayer {
			fail("forwarded %+v from layer %d while on layer %d (started %v)", p, layer, curLayer, started)
		}
		if out.TS-ts != maxOutTS-maxInTS {
			fail("TS offset changed within a layer: in %d out %d, before in %d out %d", ts, out.TS, maxInTS, maxOutTS)
		}
		dOut, dIn := int16(out.SN-maxOut), int16(sn-maxIn)
		switch {
		case dOut > 0:
			pads := int16(0)
			for k := maxIn + 1; k != sn; k++ {
				if padded[k] {
					pads++
				}
			}
			if dIn <= 0 || dOut > dIn || dOut < dIn-pads {
				fail("newest out SN advanced by %d for an in advance of %d with %d padding packets", dOut, dIn, pads)
			}
			maxOut, maxIn, maxOutTS, maxInTS = out.SN, sn, out.TS, ts
			if int16(droppedTop-sn) <= 0 {
				newerDropped = false
			}
		case dOut < 0:
			if dIn >= 0 {
				fail("late out SN %d for a new in SN %d (newest in %d)", out.SN, sn, maxIn)
			}
			// Compared in the publisher's extended numbering, which the
			// generator knows: the 16-bit out SNs cannot tell "before the
			// switch" from "more than 32,767 numbers after it", and
			// padding-only jumps can move the forwarder's numbering that
			// far without the test seeing an output.
			if ext <= switchExt {
				fail("late packet %d (extended %d) is from before the switch (extended %d, out %d)", sn, ext, switchExt, switchOut)
			}
		default:
			fail("out SN %d equals the newest", out.SN)
		}
	}
}

func FuzzForwarder(f *testing.F) {
	// Seeds: a start, switches up and down, padding runs, holes, late and
	// duplicate packets, a restart, pauses.
	f.Add([]byte{0x34, 1, 0, 0x04, 0, 1, 0x00, 0, 1, 0x00, 0, 1})
	f.Add([]byte{
		0x03, 1, 0, 0x04, 0, 1, 0x00, 0, 1, // target 0, keyframe of 0, delta
		0x03, 3, 0, 0x02, 0, 1, 0x00, 0, 1, 0x06, 0, 2, 0x02, 0, 1, 0x00, 0, 1, // target 2: delta of 2, keyframe of 2
		0x08, 0, 1, 0x0a, 0, 1, 0x0a, 0, 1, 0x02, 0, 1, // padding of 0 and 2
		0x42, 5, 1, 0x52, 3, 1, 0x62, 0, 1, 0x02, 0, 1, // hole, late, duplicate
		0x03, 2, 0, 0x05, 0, 5, 0x01, 0, 1, 0x00, 0, 1, // target 1
		0x03, 0, 0, 0x01, 0, 1, 0x03, 2, 0, 0x05, 0, 1, 0x01, 0, 1, // pause, resume
		0x75, 9, 1, 0x01, 0, 1, // restart of layer 1
	})
	f.Add([]byte{0x03, 1, 0, 0x04, 0, 0, 0x08, 0, 0, 0x08, 0, 0, 0x50, 1, 0, 0x00, 0, 0, 0x50, 2, 0})
	f.Fuzz(func(t *testing.T, data []byte) { checkForwarder(t, data) })
}

// TestForwarderInvariantsLongRun runs the fuzz checks on a long pseudo-random
// sequence (deterministic), so that every `go test` covers wraparound of both
// the publishers' and the subscriber's spaces, not only the seeds.
func TestForwarderInvariantsLongRun(t *testing.T) {
	data := make([]byte, 3*5000)
	x := uint32(2463534242)
	for i := range data {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		data[i] = byte(x)
	}
	// Mostly in-order packets with keyframes, as real streams are.
	for i := 0; i < len(data); i += 3 {
		if data[i]&0x70 >= 0x40 && data[i+1]&3 != 0 {
			data[i] &^= 0x70
		}
		if data[i]&0x08 != 0 && data[i+1]&1 != 0 {
			data[i] &^= 0x08
		}
	}
	checkForwarder(t, data)
}
