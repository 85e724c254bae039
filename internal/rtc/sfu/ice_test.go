package sfu

import (
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// blockConn loses every packet, both ways, while blocked: a client whose
// network went away (a Wi-Fi drop, a NAT binding that expired).
type blockConn struct {
	net.PacketConn
	blocked atomic.Bool
}

func (c *blockConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil || !c.blocked.Load() {
			return n, addr, err
		}
	}
}

func (c *blockConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.blocked.Load() {
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, addr)
}

// iceUfrag is the ice-ufrag of desc's first m-line that has one.
func iceUfrag(desc *webrtc.SessionDescription) string {
	if desc == nil {
		return ""
	}
	for _, line := range strings.Split(desc.SDP, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "a=ice-ufrag:"); ok {
			return v
		}
	}
	return ""
}

// TestICERestartByServer: a subscriber's network goes away, the SFU's side
// of the connection turns ICE "disconnected" (and later "failed"), and the
// SFU sends an ICE-restart offer (fresh ICE credentials) on its own: after
// the grace for "disconnected", at once for "failed" (the grace is made
// longer than the time to "failed" to see that path alone). The pion
// client answers it like any offer; when its network is back, the
// connection comes back on the new credentials and video flows again.
// A client's bare restart request (Peer.RestartICE) does the same on a
// working connection, and is dropped while the SFU's own restart is under
// way.
func TestICERestartByServer(t *testing.T) {
	if testing.Short() {
		t.Skip("about 15 s: two connections that drop and come back")
	}
	t.Run("disconnected", func(t *testing.T) { testICERestart(t, 300*time.Millisecond, 20*time.Second) })
	t.Run("failed", func(t *testing.T) { testICERestart(t, time.Minute, 2*time.Second) })
}

func testICERestart(t *testing.T, grace, failed time.Duration) {
	s, err := New(Config{UDPAddr: "127.0.0.1:0", Tick: 100 * time.Millisecond, UpgradeHold: 500 * time.Millisecond,
		ICEGrace: grace, ICERetry: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	// pion's defaults (disconnected after 5 s without traffic, failed
	// after 25 s) made short for the test.
	s.settings.SetICETimeouts(time.Second, failed, 200*time.Millisecond)
	room, err := s.NewRoom(RoomConfig{})
	if err != nil {
		t.Fatal(err)
	}
	link := &blockConn{PacketConn: loopbackUDP(t)}
	sub := joinVia(t, room, "sub", link, nil)
	peer := sub.peer
	sub.subscribe()
	pub := newTestClient(t, room, "pub")
	pub.publish(true, 10)

	received := func() int {
		_, distinct, _, _ := sub.snapshot()
		return distinct
	}
	// flows waits for n more video packets than the subscriber has.
	flows := func(what string, n int) {
		t.Helper()
		from := received()
		waitFor(t, func() string {
			return fmt.Sprintf("%s: %d video packets (from %d), SFU side ICE %s, restarts %d", what, received(), from,
				peer.pc.ICEConnectionState(), room.Stats().ICERestarts)
		}, time.Minute, func() bool { return received() >= from+n }, sub)
	}
	flows("before", 30)

	// Asked: a restart on a working connection.
	before := iceUfrag(sub.pc.RemoteDescription())
	peer.RestartICE()
	waitFor(t, func() string { return "the client to apply the SFU's restart offer" }, time.Minute,
		func() bool { return iceUfrag(sub.pc.CurrentRemoteDescription()) != before }, sub)
	if n := room.Stats().ICERestarts; n != 1 {
		t.Fatalf("%d restart offers after one request, want 1", n)
	}
	flows("after the asked restart", 30)

	// The network goes away: the SFU restarts on its own.
	before = iceUfrag(sub.pc.CurrentRemoteDescription())
	link.blocked.Store(true)
	waitFor(t, func() string {
		return fmt.Sprintf("a restart by the SFU (ICE %s, %d restarts)", peer.pc.ICEConnectionState(), room.Stats().ICERestarts)
	}, time.Minute, func() bool { return room.Stats().ICERestarts >= 2 }, sub)
	// The client's own request, sent before it saw that offer (slow
	// signaling), must not start a second restart over the first.
	if peer.RestartICE() {
		t.Fatal("a restart request while the SFU's own restart is under way started another")
	}
	link.blocked.Store(false)
	waitFor(t, func() string { return "the client to apply the SFU's restart offer" }, time.Minute,
		func() bool { return iceUfrag(sub.pc.CurrentRemoteDescription()) != before }, sub)
	flows("after the network came back", 30)
	waitFor(t, func() string { return "ICE connected on the SFU's side: " + peer.pc.ICEConnectionState().String() }, time.Minute,
		func() bool { return peer.pc.ICEConnectionState() == webrtc.ICEConnectionStateConnected }, sub)
	t.Logf("room %+v", room.Stats())
}
