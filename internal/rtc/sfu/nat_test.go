package sfu

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// TestNAT1To1AnnouncesExternalIP: behind 1:1 NAT (Config.NAT1To1IPs) the
// SFU's host candidates carry the external address, on the SFU's port, and
// never the local one.
func TestNAT1To1AnnouncesExternalIP(t *testing.T) {
	s, err := New(Config{UDPAddr: "127.0.0.1:0", NAT1To1IPs: []string{"203.0.113.9"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	room, err := s.NewRoom(RoomConfig{})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	if _, err := pc.CreateDataChannel("x", nil); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, answer, err := room.JoinOneShot(ctx, "viewer", *pc.LocalDescription())
	if err != nil {
		t.Fatal(err)
	}
	port := s.Addr().(*net.UDPAddr).Port
	want := fmt.Sprintf("203.0.113.9 %d typ host", port)
	var cands []string
	for _, line := range strings.Split(answer.SDP, "\n") {
		if strings.HasPrefix(line, "a=candidate:") {
			cands = append(cands, strings.TrimSpace(line))
		}
	}
	found := false
	for _, c := range cands {
		if strings.Contains(c, want) {
			found = true
		}
		if strings.Contains(c, "127.0.0.1") {
			t.Errorf("candidate %q announces the local address", c)
		}
	}
	if !found {
		t.Errorf("no candidate with %q among %q", want, cands)
	}
}
