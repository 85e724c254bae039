package sfu

import (
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// cappedConn is a bottleneck link in front of a subscriber's socket: RTP
// packets read from it leave a queue at most rate bit/s, and a packet that
// would wait longer than maxQueue in the queue is dropped (a router's
// drop-tail buffer). Everything else (STUN, DTLS, RTCP) passes at once.
// A rate of 0 lifts the cap.
//
// The link runs on the kernel's receive time of each packet (rxStamps),
// not on when a goroutine of this process got to it, and it tells the
// client's feedback (linkFeedback) when each packet left the link: so on a
// loaded machine the delays the SFU's GCC reads are the link's queueing,
// not this process's scheduling. Stamped by pion's own feedback generator,
// at the client's read, they held the estimate at 70-350 kbit/s without any
// cap at load averages of 13-45: 3 of 10 runs failed at load 13-27 (and 4
// more took 87-219 s), against 0 of 10 (13-26 s) with the link's times.
type cappedConn struct {
	// Only net.PacketConn's methods: pion's ICE mux would read a
	// *net.UDPConn's ReadFromAddrPort, past the link.
	net.PacketConn
	udp      *net.UDPConn
	rate     atomic.Int64 // bit/s; 0: no cap
	maxQueue time.Duration
	fb       *linkFeedback
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

func newCappedConn(t *testing.T, c *net.UDPConn, maxQueue time.Duration, fb *linkFeedback) *cappedConn {
	if !rxStamps(c) {
		t.Log("no kernel receive times: the link runs on the time it reads packets")
	}
	cc := &cappedConn{PacketConn: c, udp: c, maxQueue: maxQueue, fb: fb, out: make(chan capped, 4096), done: make(chan struct{})}
	go cc.pump()
	return cc
}

// pump reads the socket and puts each packet on the link. The queue is a
// FIFO of departure times; ReadFrom waits for each packet's departure,
// which is the link's serialization delay, the point of the test.
func (c *cappedConn) pump() {
	defer close(c.out)
	oob := make([]byte, 128)
	for {
		b := make([]byte, 1500)
		n, addr, now, err := readStamped(c.udp, b, oob)
		if err != nil {
			return
		}
		at := now
		if rtp := isRTP(b[:n]); rtp {
			if rate := c.rate.Load(); rate > 0 {
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
			c.fb.record(b[:n], at)
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

// linkFeedback is a client interceptor that sends the client's
// transport-cc feedback with the arrival times the link recorded (when each
// packet left it), where a browser stamps packets on receipt, in place of
// pion's, which stamps them when the application reads the track. Built by
// pion's own recorder, sent every 100 ms as pion's generator does.
type linkFeedback struct {
	interceptor.NoOp
	ext   atomic.Uint32 // the transport-cc header extension id, once a stream is bound
	start time.Time
	once  sync.Once
	done  chan struct{}

	mu  sync.Mutex // guards rec
	rec *twcc.Recorder
}

func newLinkFeedback() *linkFeedback {
	return &linkFeedback{start: time.Now(), done: make(chan struct{}), rec: twcc.NewRecorder(rand.Uint32())}
}

func (f *linkFeedback) NewInterceptor(string) (interceptor.Interceptor, error) { return f, nil }

func (f *linkFeedback) BindRemoteStream(info *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	for _, e := range info.RTPHeaderExtensions {
		if e.URI == sdp.TransportCCURI {
			f.ext.Store(uint32(e.ID))
		}
	}
	return r
}

// record notes that RTP packet b (SRTP: its header is in the clear, header
// extensions too without cryptex) left the link at at.
func (f *linkFeedback) record(b []byte, at time.Time) {
	id := f.ext.Load()
	if id == 0 {
		return
	}
	var h rtp.Header
	if _, err := h.Unmarshal(b); err != nil {
		return
	}
	var tcc rtp.TransportCCExtension
	if ext := h.GetExtension(uint8(id)); ext == nil || tcc.Unmarshal(ext) != nil {
		return
	}
	f.mu.Lock()
	f.rec.Record(h.SSRC, tcc.TransportSequence, at.Sub(f.start).Microseconds())
	f.mu.Unlock()
}

// BindRTCPWriter drops the feedback of pion's generator and starts sending
// the link's.
func (f *linkFeedback) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	f.once.Do(func() {
		go func() {
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-f.done:
					return
				case <-tick.C:
					f.mu.Lock()
					pkts := f.rec.BuildFeedbackPacket()
					f.mu.Unlock()
					if len(pkts) > 0 {
						_, _ = w.Write(pkts, nil)
					}
				}
			}
		}()
	})
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, a interceptor.Attributes) (int, error) {
		out := pkts[:0:0]
		for _, p := range pkts {
			if _, ok := p.(*rtcp.TransportLayerCC); !ok {
				out = append(out, p)
			}
		}
		if len(out) == 0 {
			return 0, nil
		}
		return w.Write(out, a)
	})
}

func (f *linkFeedback) Close() error {
	select {
	case <-f.done:
	default:
		close(f.done)
	}
	return nil
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
// back when the cap lifts, which takes probing (see Peer.allocate). The
// layers are observed as the subscriber sees them: the layer id each packet
// carries. The subscriber's feedback is stamped by the link (cappedConn,
// linkFeedback), so that the test reads the same on a loaded machine.
func TestBandwidthCapDropsToLowLayer(t *testing.T) {
	if testing.Short() {
		t.Skip("10-30 s: GCC climbs back at about 8% a second")
	}
	s := newTestSFU(t)
	room, err := s.NewRoom(RoomConfig{})
	if err != nil {
		t.Fatal(err)
	}
	fb := newLinkFeedback()
	link := newCappedConn(t, loopbackUDP(t), 200*time.Millisecond, fb)
	// Header extensions in the clear (no RFC 9335 cryptex, which pion
	// negotiates with pion): the link reads the transport-wide sequence
	// numbers.
	sub := joinVia(t, room, "sub", link, nil, withInterceptor(fb), func(c *webrtc.Configuration, _ *interceptor.Registry) {
		c.RTPHeaderEncryptionPolicy = webrtc.RTPHeaderEncryptionPolicyDisable
	})
	peer := sub.peer
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

	// Back up once the cap lifts. pion's GCC grows its estimate by about
	// 8% a second, and probes only at half the estimate: only the climb is
	// asserted, not its speed.
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
