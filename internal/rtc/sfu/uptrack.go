package sfu

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

const (
	// cacheSize is how many recent packets per layer are kept to answer
	// subscribers' NACKs (about 1 s of a 1 Mbit/s layer).
	cacheSize = 512
	// pliInterval is the least time between two keyframe requests for one
	// layer, however many subscribers want one (no PLI storms).
	pliInterval = 500 * time.Millisecond
	// maxLayers is the number of simulcast layers: q, h, f.
	maxLayers = 3
	// receiveMTU is the size of a layer's read buffer: pion's default
	// receive MTU (1,460, which the SFU keeps) and some.
	receiveMTU = 1500
)

// layerIndex maps a simulcast RID to a layer, lowest first. A track without
// simulcast is layer 0.
func layerIndex(rid string) int {
	switch rid {
	case "h", "m", "1":
		return 1
	case "f", "2":
		return 2
	}
	return 0
}

// layer is one simulcast encoding of a published track.
//
// cacheMu guards cache; the other fields are atomics, written by the layer's
// read loop and read by the room's ticker and keyframe requests.
type layer struct {
	ssrc    uint32
	cacheMu sync.Mutex
	cache   [cacheSize]cached
	bytes   atomic.Uint64 // payload bytes received
	bitrate atomic.Uint64 // bit/s over the last tick
	lastPLI atomic.Int64  // unix nanos of the last keyframe request
}

// cached is one packet kept to answer NACKs: what a retransmission needs
// (the payload and the marker bit; the header is rewritten per subscriber).
// The payload is the packet's own copy, never written after store.
type cached struct {
	payload []byte
	sn      uint16
	marker  bool
}

// store keeps a copy of a packet's payload in the cache and returns it, to
// be forwarded: the read buffer is reused for the next packet. The copy is
// the payload's size (rounded up to a Go size class), not the read
// buffer's: a 300-byte low-layer packet or an 80-byte Opus one kept in a
// 1,500-byte buffer held 5 to 18 times its size (as pion's ReadRTP, which
// reads each packet into a fresh buffer of the receive MTU, did). With
// mtu, the copy has the read buffer's capacity: the old cost, kept for the
// memory benchmark's baseline.
func (l *layer) store(sn uint16, marker bool, payload []byte, mtu bool) []byte {
	var kept []byte
	if mtu {
		kept = make([]byte, len(payload), receiveMTU)
	} else {
		kept = make([]byte, len(payload))
	}
	copy(kept, payload)
	l.cacheMu.Lock()
	l.cache[sn%cacheSize] = cached{payload: kept, sn: sn, marker: marker}
	l.cacheMu.Unlock()
	return kept
}

// get returns the cached packet with SN sn, if the cache still has it.
func (l *layer) get(sn uint16) (cached, bool) {
	l.cacheMu.Lock()
	c := l.cache[sn%cacheSize]
	l.cacheMu.Unlock()
	if c.payload == nil || c.sn != sn {
		return cached{}, false
	}
	return c, true
}

// upTrack is one track a participant publishes, with up to three simulcast
// layers, and the down tracks that forward it to subscribers.
//
// Lock order: Room.mu, then mu. downs is copy-on-write: the read loops load
// it without a lock.
type upTrack struct {
	room      *Room
	pub       *Peer
	id        string // "<publisher>/<publisher's track id>"
	kind      webrtc.RTPCodecType
	codec     webrtc.RTPCodecCapability
	payload   Codec
	clockRate uint32
	// screen: a screen share, which the allocator serves before cameras.
	screen bool

	mu     sync.Mutex
	layers [maxLayers]*layer
	downs  atomic.Pointer[[]*DownTrack]

	// Audio level (RFC 6464) of the current tick: sum of (127 - level)
	// and packet count, read and reset by the speaker detector.
	levelMu    sync.Mutex
	levelSum   uint64
	levelCount uint64
	levelID    uint8
}

func newUpTrack(r *Room, pub *Peer, t *webrtc.TrackRemote, recv *webrtc.RTPReceiver) *upTrack {
	u := &upTrack{room: r, pub: pub, id: pub.id + "/" + t.ID(), kind: t.Kind(), codec: t.Codec().RTPCodecCapability,
		clockRate: t.Codec().ClockRate, screen: IsScreenShare(t.Kind(), t.ID(), t.StreamID())}
	switch strings.ToLower(u.codec.MimeType) {
	case strings.ToLower(webrtc.MimeTypeVP8):
		u.payload = CodecVP8
	case strings.ToLower(webrtc.MimeTypeH264):
		u.payload = CodecH264
	default:
		u.payload = CodecAudio
	}
	for _, e := range recv.GetParameters().HeaderExtensions {
		if e.URI == sdp.AudioLevelURI {
			u.levelID = uint8(e.ID)
		}
	}
	u.downs.Store(&[]*DownTrack{})
	return u
}

// IsScreenShare tells a screen share from a camera by the publisher's own
// names for it: a video track whose track id or stream id (the SDP's msid)
// contains "screen", in any case.
func IsScreenShare(kind webrtc.RTPCodecType, trackID, streamID string) bool {
	return kind == webrtc.RTPCodecTypeVideo &&
		(strings.Contains(strings.ToLower(trackID), "screen") || strings.Contains(strings.ToLower(streamID), "screen"))
}

// addLayer starts reading one encoding of the track.
func (u *upTrack) addLayer(t *webrtc.TrackRemote) {
	idx := layerIndex(t.RID())
	l := &layer{ssrc: uint32(t.SSRC())}
	u.mu.Lock()
	u.layers[idx] = l
	u.mu.Unlock()
	go u.readLoop(t, idx, l)
}

func (u *upTrack) layer(i int) *layer {
	if i < 0 || i >= maxLayers {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.layers[i]
}

// available returns which layers exist, lowest first, and their bitrates.
func (u *upTrack) available() (have [maxLayers]bool, rate [maxLayers]uint64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i, l := range u.layers {
		if l != nil {
			have[i], rate[i] = true, l.bitrate.Load()
		}
	}
	return have, rate
}

// readLoop forwards one layer's packets to every down track until the
// publisher's track ends. One goroutine per layer; it writes to the down
// tracks itself (pion's WriteRTP does not block beyond the socket write).
// It reads into one buffer and one rtp.Packet, reused: fanOut returns when
// every down track has written the packet, and what outlives it (the
// payload, in the cache) is a copy.
func (u *upTrack) readLoop(t *webrtc.TrackRemote, idx int, l *layer) {
	buf := make([]byte, receiveMTU)
	var p rtp.Packet
	mtu := u.room.sfu.mtuCache
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			return
		}
		if err := p.Unmarshal(buf[:n]); err != nil {
			continue
		}
		if p.PayloadType == ptVP8RTX || p.PayloadType == ptH264RTX {
			// Not the track's media: a repair (RTX) packet pion did not
			// unwrap, from a sender that named its RTX stream by the
			// layer's rid instead of repaired-rtp-stream-id. Its payload
			// must never reach a subscriber.
			continue
		}
		l.bytes.Add(uint64(len(p.Payload)))
		if u.levelID != 0 {
			if raw := p.GetExtension(u.levelID); raw != nil {
				var a rtp.AudioLevelExtension
				if a.Unmarshal(raw) == nil {
					u.levelMu.Lock()
					u.levelSum += uint64(127 - a.Level&0x7f)
					u.levelCount++
					u.levelMu.Unlock()
				}
			}
		}
		// The publisher's header extensions are not forwarded (a down
		// track writes a header of its own): their IDs are the
		// publisher's negotiation, not the subscriber's.
		p.Payload = l.store(p.SequenceNumber, p.Marker, p.Payload, mtu)
		in := Packet{
			Layer:    idx,
			SN:       p.SequenceNumber,
			TS:       p.Timestamp,
			Padding:  len(p.Payload) == 0,
			Keyframe: u.payload.IsKeyframeStart(p.Payload),
			Arrival:  time.Now().UnixNano(),
		}
		fanOut(*u.downs.Load(), u.room.sfu.cfg.FanOutChunk, in, &p)
	}
}

// fanOut forwards one packet to every down track: in the calling goroutine
// up to chunk of them, in chunks over goroutines beyond (see
// Config.FanOutChunk), returning when all are written, so that packets stay
// in order per down track.
func fanOut(downs []*DownTrack, chunk int, in Packet, p *rtp.Packet) {
	if len(downs) <= chunk {
		for _, d := range downs {
			d.forward(in, p)
		}
		return
	}
	var wg sync.WaitGroup
	for start := chunk; start < len(downs); start += chunk {
		part := downs[start:min(start+chunk, len(downs))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, d := range part {
				d.forward(in, p)
			}
		}()
	}
	for _, d := range downs[:chunk] {
		d.forward(in, p)
	}
	wg.Wait()
}

// requestKeyframe asks the publisher for a keyframe of layer i, at most once
// per pliInterval for the layer whoever asks.
func (u *upTrack) requestKeyframe(i int) {
	if u.kind != webrtc.RTPCodecTypeVideo {
		return
	}
	l := u.layer(i)
	if l == nil {
		return
	}
	now := time.Now().UnixNano()
	last := l.lastPLI.Load()
	if now-last < int64(pliInterval) || !l.lastPLI.CompareAndSwap(last, now) {
		return
	}
	u.room.stats.plis.Add(1)
	_ = u.pub.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: l.ssrc}})
}

// levelTick returns the mean loudness (0..127, higher is louder) since the
// last call, and whether any packet carried a level.
func (u *upTrack) levelTick() (float64, bool) {
	u.levelMu.Lock()
	defer u.levelMu.Unlock()
	if u.levelCount == 0 {
		return 0, false
	}
	v := float64(u.levelSum) / float64(u.levelCount)
	u.levelSum, u.levelCount = 0, 0
	return v, true
}

func (u *upTrack) addDown(d *DownTrack) {
	u.mu.Lock()
	defer u.mu.Unlock()
	old := *u.downs.Load()
	next := make([]*DownTrack, 0, len(old)+1)
	next = append(append(next, old...), d)
	u.downs.Store(&next)
}

func (u *upTrack) removeDown(d *DownTrack) {
	u.mu.Lock()
	defer u.mu.Unlock()
	old := *u.downs.Load()
	next := make([]*DownTrack, 0, len(old))
	for _, x := range old {
		if x != d {
			next = append(next, x)
		}
	}
	u.downs.Store(&next)
}
