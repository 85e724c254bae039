package sfu

// Packet is what the Forwarder needs of one incoming RTP packet of a
// published track.
type Packet struct {
	// Layer is the simulcast layer the packet came in on, 0 = lowest.
	Layer int
	// SN and TS are the publisher's sequence number and timestamp for the
	// layer (each layer has its own SSRC and its own spaces).
	SN uint16
	TS uint32
	// Keyframe: the packet starts a keyframe (Codec.IsKeyframeStart); for
	// audio every packet does.
	Keyframe bool
	// Padding: the packet carries only padding (a bandwidth probe of the
	// publisher). It is never forwarded.
	Padding bool
	// Arrival is a monotonic clock reading in nanoseconds, used for the
	// timestamp step when the stream switches layers.
	Arrival int64
}

// Output is where a forwarded packet goes in the subscriber's stream.
type Output struct {
	SN uint16
	TS uint32
	// Switched: the packet is the first of a new layer (or of the stream).
	Switched bool
}

// Drop reasons, counted by the Forwarder.
const (
	DropOtherLayer = iota // not the layer being forwarded, and no switch to it here
	DropPadding           // padding-only
	DropDuplicate         // already forwarded
	DropTooOld            // older than the switch to this layer, or than the window
	DropPaused            // no layer selected
	numDrops
)

const (
	// seenWindow is how far behind the newest packet a late (reordered or
	// retransmitted) packet may arrive and still be forwarded.
	seenWindow = 256
	// maxSegments bounds the SN offset history kept for late packets.
	maxSegments = 32
	// historySize is how many forwarded packets NACKs can be mapped back for.
	historySize = 1024
	// resyncJump: a keyframe this far behind the newest packet is taken as
	// a restarted publisher stream, not as a very late packet.
	resyncJump = 4096
)

// segment: from in-SN start on (until the next segment), out = in - off.
// Offsets change when a padding packet is dropped, so that later packets stay
// contiguous, and at a layer switch.
type segment struct {
	start uint16
	off   uint16
}

type historyEntry struct {
	out, in uint16
	ts      uint32
	layer   int8
	valid   bool
}

// Forwarder rewrites the packets of one published track for one subscriber
// (one down track): the subscriber sees a single stream whose sequence
// numbers and timestamps run on across simulcast layer switches.
//
//   - It forwards one layer at a time and switches to the target layer only
//     at the start of a keyframe of that layer; until then it keeps
//     forwarding the current layer.
//   - Output SNs are contiguous: a switch continues at last+1, and dropped
//     padding does not leave a hole. A hole in the publisher's stream stays a
//     hole (the subscriber NACKs it, see Lookup).
//   - Output TSs never go backwards at a switch: the new layer continues at
//     last + the wall-clock time elapsed (at least 1 tick).
//   - 16-bit SN and 32-bit TS arithmetic is modular, so wraparound in either
//     the input or the output is seamless.
//
// A Forwarder is not safe for concurrent use: its owner (the down track)
// serializes calls with its own mutex.
type Forwarder struct {
	clockRate uint64

	current, target int
	started         bool // something has been forwarded

	highestIn uint16
	seen      [seenWindow / 64]uint64 // bit k: highestIn-k was seen
	segs      []segment
	tsOff     uint32

	lastOutTS   uint32 // highest TS forwarded
	lastArrival int64  // when the last packet was forwarded

	history [historySize]historyEntry
	drops   [numDrops]uint64
}

// NewForwarder returns a Forwarder for a track with the given RTP clock rate
// (90000 for video, 48000 for Opus). It starts paused: SetTarget chooses the
// layer.
func NewForwarder(clockRate uint32) *Forwarder {
	return &Forwarder{clockRate: uint64(clockRate), current: -1, target: -1, segs: make([]segment, 0, 4)}
}

// SetTarget selects the layer to forward; -1 pauses the stream. A change
// takes effect at the next keyframe of the new layer (see NeedsKeyframe).
func (f *Forwarder) SetTarget(layer int) {
	f.target = layer
	if layer < 0 {
		f.current = -1
	}
}

// Target is the layer the Forwarder forwards or is switching to; -1 paused.
func (f *Forwarder) Target() int { return f.target }

// Current is the layer being forwarded now; -1 before the first keyframe or
// while paused.
func (f *Forwarder) Current() int { return f.current }

// NeedsKeyframe returns the layer a keyframe is wanted from: the target,
// when the Forwarder waits to switch to it.
func (f *Forwarder) NeedsKeyframe() (int, bool) {
	if f.target >= 0 && f.current != f.target {
		return f.target, true
	}
	return 0, false
}

// Drops returns how many packets were dropped for each reason (indexed by
// the Drop constants).
func (f *Forwarder) Drops() [numDrops]uint64 { return f.drops }

// Forward decides whether p goes to the subscriber and, if so, with which
// sequence number and timestamp.
func (f *Forwarder) Forward(p Packet) (Output, bool) {
	if f.target < 0 {
		f.drops[DropPaused]++
		return Output{}, false
	}
	if p.Layer != f.current {
		if p.Layer == f.target && p.Keyframe && !p.Padding {
			return f.switchTo(p), true
		}
		f.drops[DropOtherLayer]++
		return Output{}, false
	}
	d := int16(p.SN - f.highestIn)
	switch {
	case d > 0:
		f.advance(uint16(d))
		f.highestIn = p.SN
		if p.Padding {
			f.dropPadding(p.SN)
			return Output{}, false
		}
		last := &f.segs[len(f.segs)-1]
		out := Output{SN: p.SN - last.off, TS: p.TS - f.tsOff}
		f.emit(out, p)
		return out, true
	case d == 0:
		f.drops[DropDuplicate]++
		return Output{}, false
	}
	age := -int(d)
	if age >= seenWindow || int16(p.SN-f.segs[0].start) < 0 {
		if age >= resyncJump && p.Keyframe && !p.Padding && p.Layer == f.target {
			// The publisher restarted its sequence numbers: start over
			// as at a switch, continuing our own numbering.
			return f.switchTo(p), true
		}
		f.drops[DropTooOld]++
		return Output{}, false
	}
	if f.seen[age/64]&(1<<(age%64)) != 0 {
		f.drops[DropDuplicate]++
		return Output{}, false
	}
	f.seen[age/64] |= 1 << (age % 64)
	if p.Padding {
		// A late padding packet: its out SN was already reserved (the
		// packets after it were numbered) and stays a hole.
		f.drops[DropPadding]++
		return Output{}, false
	}
	seg := f.segs[0]
	for _, s := range f.segs[1:] {
		if int16(p.SN-s.start) < 0 {
			break
		}
		seg = s
	}
	out := Output{SN: p.SN - seg.off, TS: p.TS - f.tsOff}
	f.emit(out, p)
	return out, true
}

// switchTo starts forwarding p's layer at p, which starts a keyframe.
func (f *Forwarder) switchTo(p Packet) Output {
	var out Output
	if f.started {
		// Continue after the highest out SN given or reserved: late
		// packets of the old layer may have been numbered up to there.
		out.SN = f.highestIn - f.segs[len(f.segs)-1].off + 1
		step := uint64(1)
		if el := p.Arrival - f.lastArrival; el > 0 {
			if s := uint64(el) * f.clockRate / 1e9; s > step {
				step = s
			}
		}
		out.TS = f.lastOutTS + uint32(step)
	} else {
		// The subscriber's stream starts where the publisher's is; the
		// SSRC differs anyway.
		out.SN, out.TS = p.SN, p.TS
	}
	out.Switched = true
	f.started = true
	f.current = p.Layer
	f.highestIn = p.SN
	f.seen = [seenWindow / 64]uint64{1}
	f.segs = append(f.segs[:0], segment{start: p.SN, off: p.SN - out.SN})
	f.tsOff = p.TS - out.TS
	f.lastOutTS = out.TS
	f.emit(out, p)
	return out
}

// advance moves the seen window forward by d and marks the new newest.
func (f *Forwarder) advance(d uint16) {
	if int(d) >= seenWindow {
		f.seen = [seenWindow / 64]uint64{1}
		return
	}
	words, bits := int(d)/64, uint(d)%64
	n := len(f.seen)
	for i := n - 1; i >= 0; i-- {
		var v uint64
		if j := i - words; j >= 0 {
			v = f.seen[j] << bits
			if bits != 0 && j-1 >= 0 {
				v |= f.seen[j-1] >> (64 - bits)
			}
		}
		f.seen[i] = v
	}
	f.seen[0] |= 1
}

// dropPadding drops the newest packet, sn, a padding-only one: the packets
// after it shift down by one so that the output has no hole.
func (f *Forwarder) dropPadding(sn uint16) {
	f.drops[DropPadding]++
	last := &f.segs[len(f.segs)-1]
	if last.start == sn {
		// A run of padding: widen the segment that starts here.
		last.start, last.off = sn+1, last.off+1
		return
	}
	if len(f.segs) == maxSegments {
		// Forget the oldest offset; packets from before the new oldest
		// segment are then too old (Forward drops them).
		copy(f.segs, f.segs[1:])
		f.segs = f.segs[:len(f.segs)-1]
	}
	f.segs = append(f.segs, segment{start: sn + 1, off: last.off + 1})
}

// Pad reserves n sequence numbers, right after the highest given so far,
// for padding-only packets the SFU sends on its own (bandwidth probes), and
// returns the first of them and the timestamp to send them with (the
// newest forwarded). Packets forwarded afterwards continue after them. It
// fails before the first packet and while paused.
func (f *Forwarder) Pad(n int) (first uint16, ts uint32, ok bool) {
	if !f.started || f.current < 0 || n <= 0 {
		return 0, 0, false
	}
	last := &f.segs[len(f.segs)-1]
	first = f.highestIn - last.off + 1
	start := f.highestIn + 1
	if last.start == start {
		last.off -= uint16(n)
		return first, f.lastOutTS, true
	}
	if len(f.segs) == maxSegments {
		copy(f.segs, f.segs[1:])
		f.segs = f.segs[:len(f.segs)-1]
		last = &f.segs[len(f.segs)-1]
	}
	f.segs = append(f.segs, segment{start: start, off: last.off - uint16(n)})
	return first, f.lastOutTS, true
}

// emit records a forwarded packet: the highest TS so far (a switch continues
// after it), the time, and the out→in mapping for NACKs.
func (f *Forwarder) emit(out Output, p Packet) {
	if int32(out.TS-f.lastOutTS) > 0 {
		f.lastOutTS = out.TS
	}
	f.lastArrival = p.Arrival
	f.history[out.SN%historySize] = historyEntry{out: out.SN, in: p.SN, ts: out.TS, layer: int8(p.Layer), valid: true}
}

// Mapped is a forwarded packet found by its out SN: where to fetch it from
// the publisher's layer, and the SN and TS it was forwarded with.
type Mapped struct {
	Layer int
	InSN  uint16
	Out   Output
}

// Lookup maps a sequence number the subscriber NACKed back to the
// publisher's packet, if it was forwarded recently (the last 1,024 forwarded
// packets).
func (f *Forwarder) Lookup(outSN uint16) (Mapped, bool) {
	e := f.history[outSN%historySize]
	if !e.valid || e.out != outSN {
		return Mapped{}, false
	}
	return Mapped{Layer: int(e.layer), InSN: e.in, Out: Output{SN: e.out, TS: e.ts}}, true
}
