package sfu

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// lossyConn drops a fraction of the RTP packets read from it, at random
// (seeded, so a failure can be replayed), and passes everything else —
// STUN, DTLS, RTCP — untouched, so that the connection comes up and only
// media is lost.
type lossyConn struct {
	net.PacketConn
	rate    float64
	writes  bool       // drop what is written (sent) instead of what is read
	mu      sync.Mutex // guards rng: the ICE mux reads from one goroutine, but that is its business
	rng     *rand.Rand
	dropped atomic.Int64
	passed  atomic.Int64 // RTP packets let through
}

func (c *lossyConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil || c.writes || !c.drop(b[:n]) {
			return n, addr, err
		}
	}
}

func (c *lossyConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.writes && c.drop(b) {
		return len(b), nil // lost on the way
	}
	return c.PacketConn.WriteTo(b, addr)
}

// drop decides whether packet b is lost, and counts it.
func (c *lossyConn) drop(b []byte) bool {
	if !isRTP(b) {
		return false
	}
	c.mu.Lock()
	drop := c.rng.Float64() < c.rate
	c.mu.Unlock()
	if drop {
		c.dropped.Add(1)
	} else {
		c.passed.Add(1)
	}
	return drop
}

// isRTP tells (S)RTP from the other packets on a WebRTC 5-tuple: RFC 7983
// puts RTP and RTCP at first bytes 128–191, and RFC 5761 tells RTCP by its
// packet type (192–223 in the second byte).
func isRTP(b []byte) bool {
	return len(b) >= 12 && b[0] >= 128 && b[0] <= 191 && (b[1] < 192 || b[1] > 223)
}

// frameCount walks a subscriber's video SNs frame by frame (a frame ends
// with a packet carrying the marker bit) and counts the frames that
// arrived whole.
type frameCount struct {
	next            int  // offset from firstSN of the next SN to look at
	started         bool // the first marker is behind: the frames counted began after it
	hole            bool // the current frame misses an SN
	complete, total int
}

// countFrames advances fc over the SNs at least margin behind the newest
// received, so that a packet still awaiting its retransmission is not
// judged lost yet.
func (c *testClient) countFrames(fc *frameCount, margin int) (complete, total int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sns) == 0 {
		return 0, 0
	}
	for limit := c.maxOff - margin; fc.next <= limit; fc.next++ {
		sn := c.firstSN + uint16(fc.next)
		if !c.sns[sn] {
			fc.hole = true
			continue
		}
		if c.markers[sn] {
			if fc.started {
				fc.total++
				if !fc.hole {
					fc.complete++
				}
			}
			fc.started, fc.hole = true, false
		}
	}
	return fc.complete, fc.total
}

// TestNACKRecoversLossToSubscriber: a subscriber loses 5% of the RTP
// packets the SFU sends it (dropped at random from its socket, before
// SRTP), and still receives at least 99% of the VP8 frames complete,
// because its NACKs are answered from the SFU's packet cache. Without
// retransmission a frame of n packets would arrive whole with probability
// 0.95^n: at most 95%.
func TestNACKRecoversLossToSubscriber(t *testing.T) {
	s := newTestSFU(t)
	room, err := s.NewRoom(RoomConfig{})
	if err != nil {
		t.Fatal(err)
	}
	lossy := &lossyConn{PacketConn: loopbackUDP(t), rate: 0.05, rng: rand.New(rand.NewPCG(13, 5))}
	sub := joinVia(t, room, "sub", lossy, func(se *webrtc.SettingEngine) {
		// A retransmission arrives after the packets sent since the loss;
		// on a loaded machine that can be more than SRTP's default replay
		// window of 64, and it would be refused as a replay.
		se.SetSRTPReplayProtectionWindow(1024)
	})
	sub.subscribe()
	sub.capDownlink(10_000_000)
	pub := newTestClient(t, room, "pub")
	pub.publish(true, 10)

	// 300 frames is 10 s of video; frames are judged once 200 newer SNs
	// arrived (about 2 s on the top layer), long after the NACK rounds of
	// pion's generator (every 100 ms).
	const frames, margin = 300, 200
	var fc frameCount
	waitFor(t, func() string {
		c, n := sub.countFrames(&fc, margin)
		return fmt.Sprintf("%d frames judged: %d complete of %d, %d RTP packets dropped", frames, c, n, lossy.dropped.Load())
	}, 120*time.Second, func() bool {
		_, n := sub.countFrames(&fc, margin)
		return n >= frames
	}, sub)

	complete, total := sub.countFrames(&fc, margin)
	dropped, passed := lossy.dropped.Load(), lossy.passed.Load()
	st := room.Stats()
	routes := sub.peer.pacer.rtcp
	t.Logf("%d of %d frames complete; %d RTP packets dropped, %d passed; room %+v; transport-cc feedback %d, on the RTX SSRC %d, read %d",
		complete, total, dropped, passed, st, routes.feedback.Load(), routes.feedbackRTX.Load(), routes.feedbackRead.Load())
	// The loss really happened (the test cannot pass on a lossless path).
	if dropped == 0 || float64(dropped)/float64(dropped+passed) < 0.02 {
		t.Fatalf("%d of %d RTP packets dropped: the path was not lossy", dropped, dropped+passed)
	}
	if st.Retransmitted == 0 {
		t.Error("the SFU retransmitted nothing")
	}
	// The subscriber (pion's default codecs) negotiated RTX: every
	// retransmission went on its RTX stream, which pion unwrapped.
	if st.RTX != st.Retransmitted {
		t.Errorf("%d of %d retransmissions as RTX, want all", st.RTX, st.Retransmitted)
	}
	if float64(complete) < 0.99*float64(total) {
		t.Errorf("%d of %d frames complete (%.1f%%), want >= 99%%", complete, total, 100*float64(complete)/float64(total))
	}
}

// rtxInVideo returns, for each video m-line of desc, whether it offers or
// accepts RTX.
func rtxInVideo(t *testing.T, desc *webrtc.SessionDescription) (with, without int) {
	t.Helper()
	parsed, err := desc.Unmarshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range parsed.MediaDescriptions {
		if m.MediaName.Media != "video" {
			continue
		}
		if hasRTX(m) {
			with++
		} else {
			without++
		}
	}
	return with, without
}

// hasRTX tells whether an m-line offers or accepts RTX.
func hasRTX(m *sdp.MediaDescription) bool {
	for _, a := range m.Attributes {
		if a.Key == "rtpmap" && strings.Contains(strings.ToLower(a.Value), "rtx/90000") {
			return true
		}
	}
	return false
}

// TestNACKRecoversPublisherLoss: a pion publisher of three simulcast layers
// (pion's default codecs, RTX among them) loses 5% of the RTP packets it
// sends. The SFU declines RTX on the publisher's m-lines, so the publisher
// retransmits what the SFU NACKs on the layers' own SSRCs, and a subscriber
// still gets at least 97% of the frames complete; RTX is still negotiated on
// the m-lines the SFU sends on, the publisher's included. Before RTX was declined toward publishers,
// pion's sender named its layer RTX by rid, pion's receiver re-bound the
// layer's track to it while the SFU read it, and this test failed under the
// race detector.
func TestNACKRecoversPublisherLoss(t *testing.T) {
	s := newTestSFU(t)
	room, err := s.NewRoom(RoomConfig{})
	if err != nil {
		t.Fatal(err)
	}
	lossy := &lossyConn{PacketConn: loopbackUDP(t), rate: 0.05, writes: true, rng: rand.New(rand.NewPCG(7, 11))}
	sub := newTestClient(t, room, "sub")
	sub.subscribe()
	sub.capDownlink(10_000_000)
	// A screen sharer publishes first, so that the SFU adds its track to
	// the publisher's connection before the publisher's first offer: it
	// goes on an m-line of the SFU's, with RTX, next to the publisher's
	// camera m-line without (pion once matched the two into one, a
	// client's m-line carrying a down track). The subscriber counts the
	// screen apart from the camera.
	early := newTestClient(t, room, "early")
	early.videoID = "screen"
	early.publish(true, 5)
	pub := joinVia(t, room, "pub", lossy, nil)
	pub.publish(true, 10)

	const frames, margin = 300, 200
	var fc frameCount
	waitFor(t, func() string {
		c, n := sub.countFrames(&fc, margin)
		return fmt.Sprintf("%d frames judged: %d complete of %d, %d RTP packets lost by the publisher", frames, c, n, lossy.dropped.Load())
	}, 120*time.Second, func() bool {
		_, n := sub.countFrames(&fc, margin)
		return n >= frames
	}, sub)

	complete, total := sub.countFrames(&fc, margin)
	dropped, passed := lossy.dropped.Load(), lossy.passed.Load()
	t.Logf("%d of %d frames complete; the publisher lost %d RTP packets, sent %d", complete, total, dropped, passed)
	if dropped == 0 || float64(dropped)/float64(dropped+passed) < 0.02 {
		t.Fatalf("%d of %d RTP packets lost: the path was not lossy", dropped, dropped+passed)
	}
	// Two hops of repair (publisher to SFU, SFU to subscriber): at least
	// 97%, where without retransmission a frame of the top layer (3
	// packets) arrives whole with probability 0.95^3, 86%, and one of the
	// low layer 95%. (298–300 of 300 in quiet runs.)
	if float64(complete) < 0.97*float64(total) {
		t.Errorf("%d of %d frames complete (%.1f%%), want >= 97%%", complete, total, 100*float64(complete)/float64(total))
	}
	for _, tr := range pub.pc.GetTransceivers() {
		if s := tr.Sender(); s != nil && tr.Kind() == webrtc.RTPCodecTypeVideo {
			for _, e := range s.GetParameters().Encodings {
				if e.RTX.SSRC != 0 {
					t.Errorf("publisher layer %q sends RTX on %d: the SFU's answer did not decline it", e.RID, e.RTX.SSRC)
				}
			}
		}
	}
	// The camera's m-line (the one with the simulcast rids) declines RTX
	// and carries nothing from the SFU; the screen share the SFU sends the
	// publisher comes on an m-line of its own, with RTX.
	parsed, err := pub.pc.RemoteDescription().Unmarshal()
	if err != nil {
		t.Fatal(err)
	}
	camera, screen := 0, 0
	for _, m := range parsed.MediaDescriptions {
		if m.MediaName.Media != "video" {
			continue
		}
		with := hasRTX(m)
		_, rid := m.Attribute("rid")
		msid, _ := m.Attribute("msid")
		switch {
		case rid:
			camera++
			if with || msid != "" {
				t.Errorf("the publisher's camera m-line: RTX %v, msid %q; want neither", with, msid)
			}
		case strings.HasPrefix(msid, "early "):
			screen++
			if !with {
				t.Error("the screen share's m-line to the publisher does not offer RTX")
			}
		}
	}
	if camera != 1 || screen != 1 {
		t.Errorf("the SFU's description for the publisher: %d camera m-lines and %d with the screen share, want 1 and 1", camera, screen)
	}
	if with, without := rtxInVideo(t, sub.pc.RemoteDescription()); with == 0 || without != 0 {
		t.Errorf("the SFU's offer to the subscriber: RTX on %d video m-lines, not on %d; want all", with, without)
	}
}
