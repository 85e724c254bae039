package sfu

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// DownTrack forwards one published track to one subscriber. It implements
// webrtc.TrackLocal: pion binds it to the subscriber's peer connection and
// hands it the SSRC, payload type and writer to use.
//
// mu guards the Forwarder and the binding; it is taken by the up track's
// read loops (one per layer), the RTCP loop and the allocator, and never
// held while calling out.
type DownTrack struct {
	up  *upTrack
	sub *Peer

	mu     sync.Mutex
	fwd    *Forwarder
	bound  bool
	ssrc   uint32
	pt     uint8
	writer webrtc.TrackLocalWriter
	sender *webrtc.RTPSender
	// RTX, when the subscriber negotiated it: retransmissions go on
	// rtxSSRC with payload type rtxPT and their own sequence numbers.
	rtxSSRC uint32
	rtxPT   uint8
	rtxSN   uint16
	// noRTX: the track goes on an m-line the client created, where the
	// SFU declines RTX (see Peer.declineRTX). Set before Bind.
	noRTX atomic.Bool
	// resent counts the answers to NACKs of each out SN (slot sn%len),
	// allocated at the first NACK.
	resent *[cacheSize]resendCount

	// Bandwidth probing (guarded by mu): padding-only packets at padRate
	// bit/s, sent after forwarded packets as the credit allows.
	padRate   int64
	padCredit float64 // bytes
	padLast   int64   // arrival time of the last forwarded packet

	// allocator state (guarded by the subscriber's Peer.mu)
	upgradeSince int64
	chosen       bool // the subscriber changed its quality choice: the next allocation may climb at once
}

const (
	// padSize is the padding of one probe packet: RTP's most (the count
	// is one byte).
	padSize = 255
	// maxPadBurst bounds the probe packets sent after one forwarded packet,
	// so that a probe does not arrive as one burst.
	maxPadBurst = 8
)

// setProbe makes the down track send padding at rate bit/s (0 stops it).
func (d *DownTrack) setProbe(rate int64) {
	d.mu.Lock()
	if rate != d.padRate {
		d.padRate, d.padCredit, d.padLast = rate, 0, 0
	}
	d.mu.Unlock()
}

var errNoCodec = errors.New("sfu: subscriber does not support the codec")

// Bind implements webrtc.TrackLocal.
func (d *DownTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, c := range ctx.CodecParameters() {
		if strings.EqualFold(c.MimeType, d.up.codec.MimeType) {
			var rtxPT uint8
			apt := fmt.Sprintf("apt=%d", c.PayloadType)
			for _, r := range ctx.CodecParameters() {
				if strings.EqualFold(r.MimeType, webrtc.MimeTypeRTX) && strings.Contains(r.SDPFmtpLine+";", apt+";") {
					rtxPT = uint8(r.PayloadType)
				}
			}
			d.mu.Lock()
			d.bound, d.ssrc, d.pt, d.writer = true, uint32(ctx.SSRC()), uint8(c.PayloadType), ctx.WriteStream()
			d.rtxSSRC, d.rtxPT = 0, 0
			if !d.noRTX.Load() && rtxPT != 0 && ctx.SSRCRetransmission() != 0 {
				d.rtxSSRC, d.rtxPT = uint32(ctx.SSRCRetransmission()), rtxPT
				d.sub.pacer.alias(d.rtxSSRC, d.ssrc)
			}
			d.mu.Unlock()
			return c, nil
		}
	}
	return webrtc.RTPCodecParameters{}, errNoCodec
}

// Unbind implements webrtc.TrackLocal.
// The sender has stopped (the SFU never replaces a down track's track),
// so what the pacer kept for its SSRCs goes too.
func (d *DownTrack) Unbind(webrtc.TrackLocalContext) error {
	d.mu.Lock()
	ssrc, rtx := d.ssrc, d.rtxSSRC
	d.bound, d.writer = false, nil
	d.mu.Unlock()
	d.sub.pacer.forget(ssrc, rtx)
	return nil
}

// ID implements webrtc.TrackLocal: "<publisher>/<track>".
func (d *DownTrack) ID() string { return d.up.id }

// RID implements webrtc.TrackLocal: a down track is a single stream.
func (d *DownTrack) RID() string { return "" }

// StreamID implements webrtc.TrackLocal: the publisher's participant id, so
// that a client's ontrack names the tile.
func (d *DownTrack) StreamID() string { return d.up.pub.id }

// Kind implements webrtc.TrackLocal.
func (d *DownTrack) Kind() webrtc.RTPCodecType { return d.up.kind }

// setTarget changes the layer to forward and asks for a keyframe of it.
func (d *DownTrack) setTarget(l int) {
	d.mu.Lock()
	changed := d.fwd.Target() != l
	d.fwd.SetTarget(l)
	d.mu.Unlock()
	if changed && l >= 0 {
		d.up.requestKeyframe(l)
	}
}

func (d *DownTrack) target() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fwd.Target()
}

// forward is called by the up track's read loop for every packet of every
// layer.
func (d *DownTrack) forward(in Packet, p *rtp.Packet) {
	d.mu.Lock()
	if !d.bound {
		d.mu.Unlock()
		return
	}
	out, ok := d.fwd.Forward(in)
	want, waiting := d.fwd.NeedsKeyframe()
	w, ssrc, pt := d.writer, d.ssrc, d.pt
	var pads int
	var padSN uint16
	var padTS uint32
	if ok && d.padRate > 0 {
		if d.padLast != 0 && in.Arrival > d.padLast {
			d.padCredit += float64(in.Arrival-d.padLast) / 1e9 * float64(d.padRate) / 8
		}
		d.padLast = in.Arrival
		if n := min(int(d.padCredit/padSize), maxPadBurst); n > 0 {
			if first, ts, pok := d.fwd.Pad(n); pok {
				pads, padSN, padTS = n, first, ts
			}
			d.padCredit = 0 // what a burst could not send is not owed
		}
	}
	d.mu.Unlock()
	if waiting {
		d.up.requestKeyframe(want)
	}
	if !ok {
		return
	}
	d.write(w, ssrc, pt, p.Marker, p.Payload, out)
	for i := 0; i < pads; i++ {
		d.writePadding(w, ssrc, pt, padSN+uint16(i), padTS)
	}
}

// writePadding sends one padding-only packet (RFC 3550 5.1: the last byte
// counts the padding), part of a bandwidth probe.
func (d *DownTrack) writePadding(w webrtc.TrackLocalWriter, ssrc uint32, pt uint8, sn uint16, ts uint32) {
	var pad [padSize]byte
	pad[padSize-1] = padSize
	h := rtp.Header{Version: 2, Padding: true, PayloadType: pt, SequenceNumber: sn, Timestamp: ts, SSRC: ssrc}
	if _, err := w.WriteRTP(&h, pad[:]); err == nil {
		d.up.room.stats.probes.Add(1)
	}
}

func (d *DownTrack) write(w webrtc.TrackLocalWriter, ssrc uint32, pt uint8, marker bool, payload []byte, out Output) {
	h := rtp.Header{Version: 2, Marker: marker, PayloadType: pt, SequenceNumber: out.SN, Timestamp: out.TS, SSRC: ssrc}
	if _, err := w.WriteRTP(&h, payload); err == nil {
		d.up.room.stats.forwarded.Add(1)
	}
}

// maxResends is how many NACKs of one packet a down track answers. A
// receiver whose NACK generator does not see packets repaired over RTX
// (pion's, which watches the media stream only) asks again every round
// until the packet leaves its window; a few answers cover a lost
// retransmission or two.
const maxResends = 4

// resendWindow: a count older than this belongs to an earlier lap of the
// 16-bit sequence numbers (or a NACK long after the packet), and restarts.
const resendWindow = 5 * time.Second

// resendGap is the least time between two answers to NACKs of one packet.
// pion's NACK generator asks every 100 ms and does not see a repair that
// came over RTX: without a gap a lost packet was sent up to 4 times within
// 300 ms (in TestBandwidthCapDropsToLowLayer 1.2–3.6 retransmissions per
// packet lost at the cap, against about 1 without RTX), a burst into the
// very bottleneck that lost it. A retransmission that is itself lost is
// still sent again, a gap later.
const resendGap = 250 * time.Millisecond

type resendCount struct {
	at   int64 // first answer, unix ns
	last int64 // latest answer, unix ns
	sn   uint16
	n    uint8
}

// retransmit answers a subscriber's NACK of out SN sn from the publisher's
// layer cache, with the numbers it was first sent with.
//
// With RTX negotiated the packet goes as RFC 4588 says: on the RTX SSRC and
// payload type, with the RTX stream's own sequence number, and the original
// sequence number (the one the subscriber asked for) leading the payload.
func (d *DownTrack) retransmit(sn uint16) {
	d.mu.Lock()
	m, ok := d.fwd.Lookup(sn)
	if ok {
		if d.resent == nil {
			d.resent = new([cacheSize]resendCount)
		}
		c := &d.resent[int(sn)%cacheSize]
		now := time.Now().UnixNano()
		if c.sn != sn || c.n == 0 || now-c.at > int64(resendWindow) {
			c.sn, c.n, c.at = sn, 0, now
		}
		if c.n >= maxResends || c.n > 0 && now-c.last < int64(resendGap) {
			ok = false
		} else {
			c.n++
			c.last = now
		}
	}
	w, ssrc, pt, bound := d.writer, d.ssrc, d.pt, d.bound
	rtxSSRC, rtxPT := d.rtxSSRC, d.rtxPT
	var rtxSN uint16
	if ok && bound && rtxSSRC != 0 {
		rtxSN = d.rtxSN
		d.rtxSN++
	}
	d.mu.Unlock()
	if !ok || !bound {
		return
	}
	l := d.up.layer(m.Layer)
	if l == nil {
		return
	}
	c, ok := l.get(m.InSN)
	if !ok {
		return
	}
	if rtxSSRC == 0 {
		d.write(w, ssrc, pt, c.marker, c.payload, m.Out)
		d.up.room.stats.retransmitted.Add(1)
		return
	}
	payload := make([]byte, 2+len(c.payload))
	binary.BigEndian.PutUint16(payload, m.Out.SN)
	copy(payload[2:], c.payload)
	h := rtp.Header{Version: 2, Marker: c.marker, PayloadType: rtxPT, SequenceNumber: rtxSN, Timestamp: m.Out.TS, SSRC: rtxSSRC}
	if _, err := w.WriteRTP(&h, payload); err == nil {
		d.up.room.stats.retransmitted.Add(1)
		d.up.room.stats.rtx.Add(1)
	}
}

// rtcpLoop reads the subscriber's RTCP for this track: keyframe requests go
// to the publisher (throttled), NACKs are answered from the cache, REMB
// feeds the subscriber's bandwidth estimate. Reading also drives pion's
// interceptors (reports, TWCC feedback into the estimator).
func (d *DownTrack) rtcpLoop() {
	for {
		pkts, _, err := d.sender.ReadRTCP()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				d.sub.room.log.Debug("sfu: rtcp read", "err", err)
			}
			return
		}
		for _, pkt := range pkts {
			switch p := pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				d.mu.Lock()
				cur := d.fwd.Current()
				d.mu.Unlock()
				if cur >= 0 {
					d.up.requestKeyframe(cur)
				}
			case *rtcp.TransportLayerNack:
				for _, pair := range p.Nacks {
					for _, sn := range pair.PacketList() {
						d.retransmit(sn)
					}
				}
			case *rtcp.ReceiverEstimatedMaximumBitrate:
				d.sub.setREMB(uint64(p.Bitrate))
			case *rtcp.TransportLayerCC:
				// Read through the interceptors: GCC has seen it.
				d.sub.pacer.rtcp.feedbackRead.Add(1)
			}
		}
	}
}
