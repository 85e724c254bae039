package turn

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// relayOnlyPeer builds a pion PeerConnection that may only use relay candidates from s.
func relayOnlyPeer(t *testing.T, s *Server, user string) *webrtc.PeerConnection {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeTCP4})
	se.SetIncludeLoopbackCandidate(true)
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se))

	var servers []webrtc.ICEServer
	for _, is := range s.ICEServers(user, time.Now()) {
		servers = append(servers, webrtc.ICEServer{URLs: is.URLs, Username: is.Username, Credential: is.Credential})
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{
		ICEServers:         servers,
		ICETransportPolicy: webrtc.ICETransportPolicyRelay,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pc.GracefulClose(); err != nil {
			t.Errorf("close peer: %v", err)
		}
	})
	return pc
}

// signal exchanges a complete (non-trickle) offer and answer between two peers.
func signal(ctx context.Context, offerer, answerer *webrtc.PeerConnection) error {
	offer, err := offerer.CreateOffer(nil)
	if err != nil {
		return err
	}
	gathered := webrtc.GatheringCompletePromise(offerer)
	if err := offerer.SetLocalDescription(offer); err != nil {
		return err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fmt.Errorf("offerer gathering: %w", ctx.Err())
	}
	if err := answerer.SetRemoteDescription(*offerer.LocalDescription()); err != nil {
		return err
	}
	answer, err := answerer.CreateAnswer(nil)
	if err != nil {
		return err
	}
	gathered = webrtc.GatheringCompletePromise(answerer)
	if err := answerer.SetLocalDescription(answer); err != nil {
		return err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fmt.Errorf("answerer gathering: %w", ctx.Err())
	}
	return offerer.SetRemoteDescription(*answerer.LocalDescription())
}

// TestRelayOnlyPeersExchangeData: two pion peers restricted to relay candidates connect
// through the embedded TURN server and exchange DataChannel messages.
func TestRelayOnlyPeersExchangeData(t *testing.T) {
	if testing.Short() {
		t.Skip("WebRTC end-to-end")
	}
	s, _, metrics := startServer(t, func(c *Config) { c.AllowPeers = []string{"127.0.0.1"} })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	alice := relayOnlyPeer(t, s, "alice")
	bob := relayOnlyPeer(t, s, "bob")

	const messages = 50
	var received atomic.Int64
	done := make(chan struct{})
	bob.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnMessage(func(msg webrtc.DataChannelMessage) {
			if received.Add(1) == messages {
				close(done)
			}
		})
	})
	dc, err := alice.CreateDataChannel("chat", nil)
	if err != nil {
		t.Fatal(err)
	}
	opened := make(chan struct{})
	dc.OnOpen(func() { close(opened) })

	if err := signal(ctx, alice, bob); err != nil {
		t.Fatal(err)
	}
	select {
	case <-opened:
	case <-ctx.Done():
		t.Fatalf("data channel did not open: alice %s, bob %s", alice.ICEConnectionState(), bob.ICEConnectionState())
	}
	for i := range messages {
		if err := dc.SendText(fmt.Sprintf("hello %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("bob received %d of %d messages", received.Load(), messages)
	}

	for name, pc := range map[string]*webrtc.PeerConnection{"alice": alice, "bob": bob} {
		pair, err := pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
		if err != nil || pair == nil {
			t.Fatalf("%s: no selected pair: %v", name, err)
		}
		if pair.Local.Typ != webrtc.ICECandidateTypeRelay || pair.Remote.Typ != webrtc.ICECandidateTypeRelay {
			t.Fatalf("%s: selected pair %s, want relay on both ends", name, pair)
		}
	}
	if metrics.created.Load() < 2 {
		t.Fatalf("%d allocations", metrics.created.Load())
	}
}
