package sfu

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

func loopbackPC(t *testing.T) *webrtc.PeerConnection {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}

func completeOffer(t *testing.T, pc *webrtc.PeerConnection) webrtc.SessionDescription {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-done
	return *pc.LocalDescription()
}

// TestJoinOneShot: a publisher and a viewer that negotiate once each, with
// complete offers and answers (the WHIP and WHEP shape).
func TestJoinOneShot(t *testing.T) {
	s := newTestSFU(t)
	room, err := s.NewRoom(RoomConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pub := loopbackPC(t)
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "obs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	_, answer, err := room.JoinOneShot(ctx, "pub", completeOffer(t, pub))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(answer.SDP, "a=candidate:") {
		t.Fatal("answer without candidates")
	}
	if err := pub.SetRemoteDescription(*answer); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for seq := uint16(0); ; seq++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			_ = track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: seq, Timestamp: uint32(seq) * 1800},
				Payload: []byte{0x10, 0x00, 0x9d, 0x01, 0x2a}})
		}
	}()
	// Wait for the publisher's track to reach the room.
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for n, next := room.TrackPublished(); n == 0; n, next = room.TrackPublished() {
		select {
		case <-next:
		case <-deadline.C:
			t.Fatal("no published track")
		}
	}
	viewer := loopbackPC(t)
	if _, err := viewer.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	var got atomic.Int64
	arrived := make(chan struct{}, 1)
	viewer.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			got.Add(1)
			select {
			case arrived <- struct{}{}:
			default:
			}
		}
	})
	vp, answer, err := room.JoinOneShot(ctx, "viewer", completeOffer(t, viewer))
	if err != nil {
		t.Fatal(err)
	}
	if err := viewer.SetRemoteDescription(*answer); err != nil {
		t.Fatal(err)
	}
	for got.Load() < 10 {
		select {
		case <-arrived:
		case <-deadline.C:
			vp.mu.Lock()
			var info string
			for _, d := range vp.downs {
				d.mu.Lock()
				info += strings.Join([]string{d.up.id, map[bool]string{true: "bound", false: "unbound"}[d.bound]}, " ")
				d.mu.Unlock()
			}
			vp.mu.Unlock()
			t.Fatalf("viewer got %d packets; downs: %s; stats %+v; viewer %s", got.Load(), info, room.Stats(), viewer.ConnectionState())
		}
	}
}
