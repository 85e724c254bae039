package sfu

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/transport/v5/packetio"
	"github.com/pion/webrtc/v4"
)

// feedbackToRTX is a client interceptor that addresses every transport-cc
// feedback packet the client sends to the SSRC of the RTX stream it
// receives: what pion's generator and libwebrtc's do whenever the last
// packet before the feedback was a repair (the media SSRC they name is that
// of the last packet received; with 5% loss it was 10 of 677 feedback
// packets, phase-dependent, hence made deterministic here). Feedback from
// before an RTX stream is known is dropped, so that every feedback packet
// the SFU gets is on the RTX SSRC.
type feedbackToRTX struct {
	interceptor.NoOp
	rtx       atomic.Uint32
	readdress atomic.Int64
}

func (f *feedbackToRTX) NewInterceptor(string) (interceptor.Interceptor, error) { return f, nil }

func (f *feedbackToRTX) BindRemoteStream(info *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	if info.MimeType == webrtc.MimeTypeRTX {
		f.rtx.Store(info.SSRC)
	}
	return r
}

func (f *feedbackToRTX) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, a interceptor.Attributes) (int, error) {
		out := pkts[:0:0]
		for _, p := range pkts {
			if tcc, ok := p.(*rtcp.TransportLayerCC); ok {
				rtx := f.rtx.Load()
				if rtx == 0 {
					continue
				}
				tcc.MediaSSRC = rtx
				f.readdress.Add(1)
			}
			out = append(out, p)
		}
		if len(out) == 0 {
			return 0, nil
		}
		return w.Write(out, a)
	})
}

// TestFeedbackOnRTXReachesEstimator: a subscriber (pion, transport-cc and
// no REMB, as a browser that negotiated transport-cc) addresses its
// feedback to the SFU's RTX SSRC of its video (feedbackToRTX). pion's
// RTPSender reads RTCP on its media SSRC only: without the SFU's RTCP
// routes (rtcp.go) none of that feedback reached the down tracks' readers,
// and the subscriber's GCC estimator saw none. With them every feedback
// packet is read, and the estimator reports feedback.
func TestFeedbackOnRTXReachesEstimator(t *testing.T) {
	s := newTestSFU(t)
	room, err := s.NewRoom(RoomConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var peer *Peer
	fb := &feedbackToRTX{}
	sub := newClientWith(t, "sub", nil, func(send func(Signal)) (func(Signal) error, error) {
		p, err := room.Join("sub", send)
		if err != nil {
			return nil, err
		}
		peer = p
		return p.Signal, nil
	}, withInterceptor(fb))
	sub.peer = peer
	sub.subscribe()
	pub := newTestClient(t, room, "pub")
	pub.publish(true, 10)

	routes := peer.pacer.rtcp
	counts := func() string {
		peer.mu.Lock()
		got := peer.feedback
		peer.mu.Unlock()
		return fmt.Sprintf("transport-cc feedback: %d sent to the RTX SSRC, %d received, %d of them on an RTX SSRC, %d read; estimator fed: %v",
			fb.readdress.Load(), routes.feedback.Load(), routes.feedbackRTX.Load(), routes.feedbackRead.Load(), got)
	}
	// pion's generator sends feedback every 100 ms: 20 is about 2 s.
	waitFor(t, counts, 30*time.Second, func() bool { return routes.feedbackRead.Load() >= 20 }, sub)
	t.Log(counts())
	if n, rtx := routes.feedback.Load(), routes.feedbackRTX.Load(); rtx != n {
		t.Errorf("%d of %d feedback packets received on an RTX SSRC, want all (the client's interceptor readdresses them)", rtx, n)
	}
	// The estimator's own word that it had feedback (its target moved).
	waitFor(t, counts, 30*time.Second, func() bool {
		peer.mu.Lock()
		defer peer.mu.Unlock()
		return peer.feedback
	}, sub)
}

// TestRTCPRoutes: the buffer factory's mechanism alone. RTCP written to an
// RTX SSRC's buffer is read from the media SSRC's; a packet that names both
// (a receiver report with a block for each, which pion's session writes to
// both buffers) is not queued twice; other SSRCs keep their own; a write
// with no media reader left is dropped without an error (an error would
// drop the rest of its compound packet).
func TestRTCPRoutes(t *testing.T) {
	const media, rtx, other = 1111, 2222, 3333
	r := newRTCPRoutes()
	r.alias(rtx, media)
	mediaBuf := r.newBuffer(packetio.RTCPBufferPacket, media)
	rtxBuf := r.newBuffer(packetio.RTCPBufferPacket, rtx)
	otherBuf := r.newBuffer(packetio.RTCPBufferPacket, other)
	marshal := func(p rtcp.Packet) []byte {
		t.Helper()
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rec := twcc.NewRecorder(9) // pion's feedback, as a pion receiver builds it
	rec.Record(rtx, 7, 1000)
	fb := rec.BuildFeedbackPacket()
	if len(fb) != 1 {
		t.Fatalf("%d feedback packets, want 1", len(fb))
	}
	tcc := marshal(fb[0])
	both := marshal(&rtcp.ReceiverReport{SSRC: 9, Reports: []rtcp.ReceptionReport{{SSRC: media}, {SSRC: rtx}}})
	for _, b := range [][]byte{tcc, both} {
		if n, err := rtxBuf.Write(b); err != nil || n != len(b) {
			t.Fatalf("write to the RTX buffer: %d, %v", n, err)
		}
	}
	if _, err := otherBuf.Write(both); err != nil {
		t.Fatal(err)
	}
	if n := mediaBuf.(*routeBuffer).Count(); n != 1 {
		t.Fatalf("%d packets in the media buffer, want 1: the feedback written to the RTX SSRC", n)
	}
	got := make([]byte, 1500)
	n, err := mediaBuf.Read(got)
	if err != nil {
		t.Fatal(err)
	}
	if pkts, err := rtcp.Unmarshal(got[:n]); err != nil || len(pkts) != 1 {
		t.Fatalf("media buffer: %v %v", pkts, err)
	} else if p, ok := pkts[0].(*rtcp.TransportLayerCC); !ok || p.MediaSSRC != rtx || p.BaseSequenceNumber != 7 {
		t.Fatalf("media buffer read %#v, want the feedback written to the RTX SSRC", pkts[0])
	}
	if b := mediaBuf.(*routeBuffer); b.Count() != 0 {
		t.Errorf("%d more packets in the media buffer, want none (the report naming both SSRCs is not queued twice)", b.Count())
	}
	if b := otherBuf.(*routeBuffer); b.Count() != 1 {
		t.Errorf("%d packets in another SSRC's buffer, want its own 1", b.Count())
	}
	if f, fr := r.feedback.Load(), r.feedbackRTX.Load(); f != 1 || fr != 1 {
		t.Errorf("feedback counted %d, on the RTX SSRC %d; want 1 and 1", f, fr)
	}
	if err := mediaBuf.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := rtxBuf.Write(tcc); err != nil || n != len(tcc) {
		t.Errorf("write to the RTX buffer with the media buffer closed: %d, %v; want dropped quietly", n, err)
	}
}
