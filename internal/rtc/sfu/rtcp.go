package sfu

import (
	"io"
	"sync"
	"sync/atomic"

	"github.com/pion/rtcp"
	"github.com/pion/transport/v5/packetio"
)

// Buffer limits, as pion's SRTP session sets them when no BufferFactory is
// given (srtp's srtpBufferSize and srtcpBufferSize).
const (
	rtpBufferSize  = 1000 * 1000
	rtcpBufferSize = 100 * 1000
)

// rtcpRoutes is the SRTP BufferFactory of one peer connection
// (webrtc.SettingEngine.BufferFactory): it makes the buffers pion's SRTP
// session demultiplexes decrypted packets into, one per SSRC, and passes
// RTCP addressed to a down track's RTX SSRC on to the buffer of the track's
// media SSRC.
//
// Why: pion's RTPSender reads RTCP on its media SSRC only, and RTCP
// addressed to any other SSRC lands in a buffer nobody reads ("Incoming
// unhandled RTCP ssrc", peerconnection.go's undeclaredRTCPMediaProcessor).
// A receiver's transport-wide feedback names as its media SSRC the SSRC of
// the last packet it received before sending it (pion's twcc.Recorder; the
// same in libwebrtc), so after a repair sent on RTX some feedback was
// addressed to the RTX SSRC, and the subscriber's GCC estimator, which
// reads feedback through the down tracks' RTCP readers, never saw it.
//
// Everything else is as without a factory: buffers of the same limits, with
// packet attributes passed through. pion's "unhandled" log line still comes,
// once per RTX SSRC: the RTX stream is new to pion's session, but what is
// written to it now reaches the media SSRC's reader.
//
// It is safe for concurrent use; mu guards the maps and is never held while
// writing to a buffer.
type rtcpRoutes struct {
	mu      sync.Mutex
	aliases map[uint32]uint32       // RTX SSRC -> media SSRC
	buffers map[uint32]*routeBuffer // RTCP buffers by SSRC

	// Transport-wide congestion control feedback (transport-cc) from the
	// peer: received in all, received addressed to an RTX SSRC, and read
	// by the down tracks' RTCP loops, i.e. through the GCC estimator's
	// reader (DownTrack.rtcpLoop counts it).
	feedback, feedbackRTX, feedbackRead atomic.Uint64
}

func newRTCPRoutes() *rtcpRoutes {
	return &rtcpRoutes{aliases: map[uint32]uint32{}, buffers: map[uint32]*routeBuffer{}}
}

// alias makes RTCP addressed to rtx go to media's reader.
func (r *rtcpRoutes) alias(rtx, media uint32) {
	r.mu.Lock()
	r.aliases[rtx] = media
	r.mu.Unlock()
}

// unalias undoes alias when the down track's sender stops.
func (r *rtcpRoutes) unalias(rtx uint32) {
	r.mu.Lock()
	delete(r.aliases, rtx)
	r.mu.Unlock()
}

// newBuffer implements webrtc.SettingEngine.BufferFactory.
func (r *rtcpRoutes) newBuffer(kind packetio.BufferPacketType, ssrc uint32) io.ReadWriteCloser {
	b := &routeBuffer{Buffer: packetio.NewBuffer()}
	if kind != packetio.RTCPBufferPacket {
		b.SetLimitSize(rtpBufferSize)
		return b
	}
	b.SetLimitSize(rtcpBufferSize)
	b.routes, b.ssrc = r, ssrc
	r.mu.Lock()
	r.buffers[ssrc] = b
	r.mu.Unlock()
	return b
}

// route returns the buffer that RTCP addressed to ssrc should go to instead
// of ssrc's own, if any. The alias is looked up at each write, not when the
// buffer is made, so the order of the two does not matter.
func (r *rtcpRoutes) route(ssrc uint32) (media uint32, to *routeBuffer, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	media, ok = r.aliases[ssrc]
	if !ok {
		return 0, nil, false
	}
	return media, r.buffers[media], true
}

// routeBuffer is one SSRC's buffer of decrypted packets; for RTCP (routes
// set) it counts feedback and passes on what is addressed to an RTX SSRC.
type routeBuffer struct {
	*packetio.Buffer
	routes *rtcpRoutes // nil for RTP
	ssrc   uint32
}

// isTransportCC tells a transport-wide feedback packet (RTPFB, FMT 15) by its
// header. pion's SRTCP session writes the packets of a compound one by one.
func isTransportCC(b []byte) bool {
	return len(b) >= 8 && b[0]>>6 == 2 && b[0]&0x1f == rtcp.FormatTCC && b[1] == uint8(rtcp.TypeTransportSpecificFeedback)
}

func (b *routeBuffer) Read(p []byte) (int, error) {
	n, _, err := b.Buffer.Read(p, nil)
	return n, err
}

func (b *routeBuffer) Write(p []byte) (int, error) {
	return b.WriteWithAttributes(p, nil)
}

// ReadWithAttributes passes packet attributes through, as pion's own buffer
// does.
func (b *routeBuffer) ReadWithAttributes(p []byte, a packetio.Attributes) (int, packetio.Attributes, error) {
	return b.Buffer.Read(p, a)
}

// WriteWithAttributes queues p, or for RTCP addressed to an RTX SSRC queues
// it in the media SSRC's buffer. Like pion's SRTCP stream, it drops what
// does not fit rather than fail: an error here would drop the rest of the
// compound packet too.
func (b *routeBuffer) WriteWithAttributes(p []byte, a packetio.Attributes) (int, error) {
	if b.routes == nil {
		return b.Buffer.Write(p, a)
	}
	tcc := isTransportCC(p)
	if tcc {
		b.routes.feedback.Add(1)
	}
	media, to, ok := b.routes.route(b.ssrc)
	if !ok {
		return b.Buffer.Write(p, a)
	}
	if tcc {
		b.routes.feedbackRTX.Add(1)
	}
	if to == nil || addressedTo(p, media) {
		// No reader (yet, or any more); or a packet also addressed to
		// the media SSRC (a receiver report with blocks for both), which
		// the session has written there already.
		return len(p), nil
	}
	_, _ = to.Buffer.Write(p, a) // full or closed: dropped, as pion drops to a full buffer
	return len(p), nil
}

// addressedTo tells whether RTCP packet p names ssrc among its destinations.
func addressedTo(p []byte, ssrc uint32) bool {
	pkts, err := rtcp.Unmarshal(p)
	if err != nil {
		return false
	}
	for _, pkt := range pkts {
		for _, s := range pkt.DestinationSSRC() {
			if s == ssrc {
				return true
			}
		}
	}
	return false
}

// Close closes the buffer and forgets it.
func (b *routeBuffer) Close() error {
	if b.routes != nil {
		b.routes.mu.Lock()
		if b.routes.buffers[b.ssrc] == b {
			delete(b.routes.buffers, b.ssrc)
		}
		b.routes.mu.Unlock()
	}
	return b.Buffer.Close()
}
