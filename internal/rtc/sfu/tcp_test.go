package sfu

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// TestICETCPFallback: with Config.TCP the SFU takes ICE over TCP on its
// UDP port's number. A publisher and a subscriber that may use TCP only
// (no UDP candidates at all) connect, and the subscriber receives the
// publisher's video and audio over TCP.
func TestICETCPFallback(t *testing.T) {
	s, err := New(Config{UDPAddr: "127.0.0.1:0", TCP: true, Tick: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	udp, tcp := s.Addr().(*net.UDPAddr), s.TCPAddr().(*net.TCPAddr)
	if udp.Port != tcp.Port {
		t.Fatalf("ICE-TCP on port %d, UDP on %d: want one port number", tcp.Port, udp.Port)
	}
	room, err := s.NewRoom(RoomConfig{})
	if err != nil {
		t.Fatal(err)
	}
	tcpOnly := func(se *webrtc.SettingEngine) {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	}
	join := func(id string) func(send func(Signal)) (func(Signal) error, error) {
		return func(send func(Signal)) (func(Signal) error, error) {
			p, err := room.Join(id, send)
			if err != nil {
				return nil, err
			}
			return p.Signal, nil
		}
	}
	sub := newClientWith(t, "sub", tcpOnly, join("sub"))
	sub.subscribe()
	pub := newClientWith(t, "pub", tcpOnly, join("pub"))
	pub.publish(true, 30)

	waitFor(t, func() string {
		l, _, _, a := sub.snapshot()
		return fmt.Sprintf("video and audio over TCP: layers %v, audio %d, stats %+v", l, a, room.Stats())
	}, time.Minute, func() bool {
		l, _, _, a := sub.snapshot()
		return l[0]+l[1]+l[2] >= 30 && a >= 30
	}, sub)
	for _, c := range []*testClient{sub, pub} {
		var pair *webrtc.ICECandidatePair
		for _, tr := range c.pc.GetTransceivers() {
			if tr.Receiver() != nil && tr.Receiver().Transport() != nil {
				if pair, err = tr.Receiver().Transport().ICETransport().GetSelectedCandidatePair(); err != nil {
					t.Fatal(err)
				}
				break
			}
		}
		if pair == nil || pair.Local.Protocol != webrtc.ICEProtocolTCP || pair.Remote.Port != uint16(tcp.Port) {
			t.Fatalf("%s: selected pair %v, want TCP to the SFU's port %d", c.id, pair, tcp.Port)
		}
	}
}
