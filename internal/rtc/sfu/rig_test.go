package sfu

import (
	"net"
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// loopbackUDP is a fresh UDP socket on 127.0.0.1 for a client whose path to
// the SFU a test shapes (lossyConn, cappedConn, blockConn); joinVia closes
// it.
func loopbackUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return udp
}

// joinVia joins a pion client to room over conn, the test's wrapper of the
// client's own loopback socket: the client's ICE runs on a mux over conn,
// settings then apply to its SettingEngine, then opts (see newClientWith). The client's Peer is set; the mux
// and conn are closed when the test ends, after the client.
func joinVia(t *testing.T, room *Room, id string, conn net.PacketConn, settings func(*webrtc.SettingEngine),
	opts ...clientOption) *testClient {
	t.Helper()
	mux := webrtc.NewICEUDPMux(nil, conn)
	t.Cleanup(func() {
		_ = mux.Close()
		_ = conn.Close()
	})
	var peer *Peer
	c := newClientWith(t, id, func(se *webrtc.SettingEngine) {
		se.SetICEUDPMux(mux)
		if settings != nil {
			settings(se)
		}
	}, func(send func(Signal)) (func(Signal) error, error) {
		p, err := room.Join(id, send)
		if err != nil {
			return nil, err
		}
		peer = p
		return p.Signal, nil
	}, opts...)
	c.peer = peer
	return c
}

// withInterceptor registers f on the client before pion's defaults.
func withInterceptor(f interceptor.Factory) clientOption {
	return func(_ *webrtc.Configuration, reg *interceptor.Registry) { reg.Add(f) }
}
