package sfu

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// cappedConn is a bottleneck link in front of a subscriber's socket: RTP
// packets read from it leave a queue at most rate bit/s, and a packet that
// would wait longer than maxQueue in the queue is dropped (a router's
// drop-tail buffer). Everything else (STUN, DTLS, RTCP) passes at once.
// A rate of 0 lifts the cap.
type cappedConn struct {
	net.PacketConn
	rate     atomic.Int64 // bit/s; 0: no cap
	maxQueue time.Duration
	out      chan capped
	done     chan struct{}
	dropped  atomic.Int64

	mu   sync.Mutex // guards free: when the link is next free
	free time.Time
}

type capped struct {
	b    []byte
	addr net.Addr
	at   time.Time // when the packet leaves the link
}

func newCappedConn(c net.PacketConn, maxQueue time.Duration) *cappedConn {
	cc := &cappedConn{PacketConn: c, maxQueue: maxQueue, out: make(chan capped, 4096), done: make(chan struct{})}
	go cc.pump()
	return cc
}

// pump reads the socket and puts each packet on the link. The queue is a
// FIFO of departure times; ReadFrom waits for each packet's departure,
// which is the link's serialization delay, the point of the test.
func (c *cappedConn) pump() {
	defer close(c.out)
	for {
		b := make([]byte, 1500)
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil {
			return
		}
		now := time.Now()
		at := now
		if rate := c.rate.Load(); rate > 0 && isRTP(b[:n]) {
			c.mu.Lock()
			start := c.free
			if start.Before(now) {
				start = now
			}
			if start.Sub(now) > c.maxQueue {
				c.mu.Unlock()
				c.dropped.Add(1)
				continue
			}
			at = start.Add(time.Duration(int64(n) * 8 * int64(time.Second) / rate))
			c.free = at
			c.mu.Unlock()
		}
		select {
		case c.out <- capped{b[:n], addr, at}:
		case <-c.done:
			return
		}
	}
}

func (c *cappedConn) ReadFrom(b []byte) (int, net.Addr, error) {
	p, ok := <-c.out
	if !ok {
		return 0, nil, net.ErrClosed
	}
	if d := time.Until(p.at); d > 0 {
		time.Sleep(d)
	}
	return copy(b, p.b), p.addr, nil
}

func (c *cappedConn) Close() error {
	select {
	case <-c.done:
	default:
		close(c.done)
	}
	return c.PacketConn.Close()
}

// layerEvent: the subscriber started receiving another simulcast layer, at
// the publisher's frame number frame.
type layerEvent struct {
	layer int
	frame uint32
}

// TestBandwidthCapDropsToLowLayer: a subscriber's downlink is capped at
// 300 kbit/s (a bottleneck with a 200 ms drop-tail queue on its socket) and
// its only feedback is transport-wide congestion control (no REMB), so the
// SFU must see the cap in its GCC estimate. It falls to the low layer within
// 5 s of media time (150 frames of the publisher after the cap) and climbs
// back when the cap lifts, which takes probing (see Peer.allocate). The layers are observed as the
// subscriber sees them: the layer id each packet carries.
func TestBandwidthCapDropsToLowLayer(t *testing.T) {
	if testing.Short() {
		t.Skip("10-30 s: GCC climbs back at about 8% a second")
	}
	s := newTestSFU(t)
	room, err := s.NewRoom(RoomConfig{})
	if err != nil {
		t.Fatal(err)
	}
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	link := newCappedConn(udp, 200*time.Millisecond)
	mux := webrtc.NewICEUDPMux(nil, link)
	t.Cleanup(func() {
		_ = mux.Close()
		_ = link.Close()
	})
	var peer *Peer
	sub := newClientWith(t, "sub", func(se *webrtc.SettingEngine) { se.SetICEUDPMux(mux) },
		func(send func(Signal)) (func(Signal) error, error) {
			p, err := room.Join("sub", send)
			if err != nil {
				return nil, err
			}
			peer = p
			return p.Signal, nil
		})
	sub.peer = peer
	events := make(chan layerEvent, 1024)
	sub.layerEvents = events
	sub.subscribe()

	// Layers of about 100, 500 and 1,000 kbit/s with audio: under the cap
	// only the low one fits.
	pub := newTestClient(t, room, "pub")
	pub.shape = [maxLayers]struct{ packets, size int }{{1, 400}, {2, 1000}, {4, 1000}}
	pub.publish(true, 30)

	// waitLayer waits for the subscriber to receive a layer at least (up)
	// or at most (down) want.
	waitLayer := func(what string, want int, up bool, limit time.Duration) layerEvent {
		t.Helper()
		deadline := time.After(limit)
		for {
			select {
			case e := <-events:
				t.Logf("layer %d at frame %d (estimate %d bit/s)", e.layer, e.frame, peer.Estimate())
				if up && e.layer >= want || !up && e.layer <= want {
					return e
				}
			case <-deadline:
				t.Fatalf("%s: no switch to layer %d; estimate %d bit/s, %d packets dropped at the cap, room %+v",
					what, want, peer.Estimate(), link.dropped.Load(), room.Stats())
			}
		}
	}
	waitLayer("before the cap", 1, true, 3*time.Minute)

	capFrame := pub.frame.Load()
	link.rate.Store(300_000)
	down := waitLayer("under the cap", 0, false, 3*time.Minute)
	if n := int64(down.frame) - int64(capFrame); n > 150 {
		t.Errorf("the low layer came %d frames (%.1f s of media) after the cap, want within 150 (5 s)", n, float64(n)/30)
	} else {
		t.Logf("low layer %d frames (%.1f s of media) after the cap; %d packets dropped at the cap", n, float64(n)/30, link.dropped.Load())
	}

	// Back up once the cap lifts. How fast depends on GCC reading delays
	// on a loaded machine (at a load average of 30 on 2 cores its estimate
	// fell to 120 kbit/s without any cap, and the climb took 77 s of media),
	// so only the climb is asserted, not its speed.
	liftFrame := pub.frame.Load()
	link.rate.Store(0)
	up := waitLayer("after the cap lifted", 1, true, 3*time.Minute)
	routes := peer.pacer.rtcp
	t.Logf("layer %d again %d frames (%.1f s of media) after the cap lifted; room %+v; transport-cc feedback %d, on the RTX SSRC %d, read %d",
		up.layer, up.frame-liftFrame, float64(up.frame-liftFrame)/30, room.Stats(), routes.feedback.Load(), routes.feedbackRTX.Load(), routes.feedbackRead.Load())
	if room.Stats().Probes == 0 {
		t.Error("the SFU sent no probe while the subscriber was held on the low layer")
	}
}
