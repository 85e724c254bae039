package sfu

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// testClient is a real pion peer talking to a Room as a browser would: the
// polite side of perfect negotiation, trickle ICE, media over loopback.
type testClient struct {
	t      *testing.T
	id     string
	pc     *webrtc.PeerConnection
	peer   *Peer              // when the client joined a Room in this process
	signal func(Signal) error // to the SFU
	shape  [maxLayers]struct{ packets, size int }
	in     chan Signal
	do     chan func()
	done   chan struct{}
	// videoID is the id of the video track publish sends ("camera").
	videoID string
	// rolledBack: our offer lost a glare; offer again after answering
	// (what a browser's negotiationneeded does).
	rolledBack bool

	mu           sync.Mutex
	queued       []webrtc.ICECandidateInit
	layers       [maxLayers]int  // video packets received per layer
	lowRun       int             // video packets of layer 0 since the last of another layer
	sns          map[uint16]bool // video SNs received
	markers      map[uint16]bool // of those, the ones with the marker bit (a frame's last packet)
	maxOff       int             // newest video SN received, as an offset from firstSN
	firstSN      uint16          // first video SN received
	lastSN       uint16          // newest video SN received (by arrival)
	videoSSRC    uint32
	audioPkts    int
	probes       int            // padding-only video packets
	screenLayers [maxLayers]int // screen-share packets received per layer
	lastLayer    int            // layer of the newest video packet, -1 before the first
	topSN        uint16         // newest video SN (by number)
	// layerEvents receives every change of the layer the client receives,
	// with the publisher's frame number of the packet that changed it
	// (when not nil; bwcap_test.go reads it).
	layerEvents chan layerEvent
	frame       atomic.Uint32 // frames the client published so far
	connected   chan struct{}
	notify      chan struct{}
	connOnce    sync.Once
}

func newTestClient(t *testing.T, r *Room, id string) *testClient {
	t.Helper()
	var peer *Peer
	c := newClient(t, id, func(send func(Signal)) (func(Signal) error, error) {
		p, err := r.Join(id, send)
		if err != nil {
			return nil, err
		}
		peer = p
		return p.Signal, nil
	})
	c.peer = peer
	return c
}

// newClient makes a pion client; join connects it to an SFU, giving it the
// function that receives the SFU's signals and returning the one that
// sends the client's.
func newClient(t *testing.T, id string, join func(send func(Signal)) (func(Signal) error, error)) *testClient {
	t.Helper()
	return newClientWith(t, id, nil, join)
}

// clientOption changes a test client's configuration, or registers
// interceptors before pion's defaults (so that they see the RTCP pion's
// interceptors write; rig_test.go).
type clientOption func(*webrtc.Configuration, *interceptor.Registry)

// newClientWith is newClient with settings applied to the client's
// SettingEngine last (loss_test.go gives it a lossy socket), and opts.
func newClientWith(t *testing.T, id string, settings func(*webrtc.SettingEngine), join func(send func(Signal)) (func(Signal) error, error),
	opts ...clientOption) *testClient {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	reg := &interceptor.Registry{}
	var cfg webrtc.Configuration
	for _, o := range opts {
		o(&cfg, reg)
	}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	if settings != nil {
		settings(&se)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &testClient{t: t, id: id, pc: pc, shape: layerShape, in: make(chan Signal, 256), do: make(chan func()), done: make(chan struct{}),
		videoID: "camera", sns: map[uint16]bool{}, markers: map[uint16]bool{}, lastLayer: -1, connected: make(chan struct{}), notify: make(chan struct{}, 1)}
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			c.connOnce.Do(func() { close(c.connected) })
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { go c.receive(tr) })
	c.signal, err = join(func(s Signal) { c.in <- s })
	if err != nil {
		t.Fatal(err)
	}
	pc.OnICECandidate(func(ic *webrtc.ICECandidate) {
		if ic != nil {
			init := ic.ToJSON()
			if err := c.signal(Signal{Candidate: &init}); err != nil {
				t.Errorf("%s: candidate: %v", id, err)
			}
		}
	})
	looped := make(chan struct{})
	go func() {
		defer close(looped)
		c.loop()
	}()
	// The loop finishes the signal it is applying before the connection
	// closes: closing under it failed that signal ("remote answer:
	// InvalidStateError: connection closed") and so the test.
	t.Cleanup(func() {
		close(c.done)
		<-looped
		_ = pc.Close()
	})
	return c
}

// loop applies the SFU's signals: the client is polite, so an offer that
// collides with its own rolls its own back.
func (c *testClient) loop() {
	for {
		select {
		case <-c.done:
			return
		case f := <-c.do:
			f()
		case s := <-c.in:
			if err := c.apply(s); err != nil {
				c.t.Errorf("%s: %v", c.id, err)
			}
		}
	}
}

func (c *testClient) apply(s Signal) error {
	if d := s.Description; d != nil {
		switch d.Type {
		case webrtc.SDPTypeOffer:
			if c.pc.SignalingState() != webrtc.SignalingStateStable {
				if err := c.pc.SetLocalDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeRollback}); err != nil {
					return fmt.Errorf("rollback: %w", err)
				}
				c.rolledBack = true
			}
			if err := c.pc.SetRemoteDescription(*d); err != nil {
				return fmt.Errorf("remote offer: %w", err)
			}
			answer, err := c.pc.CreateAnswer(nil)
			if err != nil {
				return err
			}
			if err := c.pc.SetLocalDescription(answer); err != nil {
				return err
			}
			if err := c.signal(Signal{Description: c.pc.LocalDescription()}); err != nil {
				return err
			}
			if c.rolledBack {
				c.rolledBack = false
				if err := c.sendOffer(); err != nil {
					return err
				}
			}
		case webrtc.SDPTypeAnswer:
			if err := c.pc.SetRemoteDescription(*d); err != nil {
				return fmt.Errorf("remote answer: %w", err)
			}
		}
		c.mu.Lock()
		q := c.queued
		c.queued = nil
		c.mu.Unlock()
		for _, ic := range q {
			_ = c.pc.AddICECandidate(ic)
		}
	}
	if s.Candidate != nil {
		if c.pc.RemoteDescription() == nil {
			c.mu.Lock()
			c.queued = append(c.queued, *s.Candidate)
			c.mu.Unlock()
			return nil
		}
		return c.pc.AddICECandidate(*s.Candidate)
	}
	return nil
}

// subscribe opens the connection of a client that only receives. Clients
// offer first (a publisher with its tracks, see publish); this one offers a
// data channel.
func (c *testClient) subscribe() {
	c.t.Helper()
	if _, err := c.pc.CreateDataChannel("x", nil); err != nil {
		c.t.Fatal(err)
	}
	c.offer()
}

// offer sends an offer from the client's loop (so that it cannot race an
// incoming one).
func (c *testClient) offer() {
	c.t.Helper()
	errc := make(chan error, 1)
	c.do <- func() { errc <- c.sendOffer() }
	if err := <-errc; err != nil {
		c.t.Fatal(err)
	}
}

func (c *testClient) sendOffer() error {
	o, err := c.pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	if err := c.pc.SetLocalDescription(o); err != nil {
		return err
	}
	return c.signal(Signal{Description: c.pc.LocalDescription()})
}

// receive counts a subscribed track's packets; video payloads carry the
// publisher's layer in byte 2 (see publish).
func (c *testClient) receive(tr *webrtc.TrackRemote) {
	video := tr.Kind() == webrtc.RTPCodecTypeVideo
	// A screen share is counted apart (screen_test.go); the rest of the
	// client's bookkeeping is about the camera.
	screen := video && strings.Contains(tr.ID(), "screen")
	if video && !screen {
		c.mu.Lock()
		c.videoSSRC = uint32(tr.SSRC())
		c.mu.Unlock()
	}
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		c.mu.Lock()
		if screen {
			if len(p.Payload) > 2 {
				c.screenLayers[p.Payload[2]]++
			}
		} else if video && len(p.Payload) == 0 && p.Padding {
			// A bandwidth probe of the SFU: it takes an SN of the
			// stream, so it counts for contiguity, and carries no frame.
			c.sns[p.SequenceNumber] = true
			c.probes++
		} else if video && len(p.Payload) > 2 {
			if len(c.sns) == 0 {
				c.firstSN = p.SequenceNumber
			}
			c.layers[p.Payload[2]]++
			// Only a packet newer than every one before can change the
			// layer: a retransmission of an old one is not a switch.
			newest := c.lastLayer < 0 || int16(p.SequenceNumber-c.topSN) > 0
			if newest {
				c.topSN = p.SequenceNumber
			}
			if l := int(p.Payload[2]); newest && l != c.lastLayer {
				c.lastLayer = l
				if c.layerEvents != nil && len(p.Payload) >= 7 {
					select {
					case c.layerEvents <- layerEvent{layer: l, frame: binary.BigEndian.Uint32(p.Payload[3:])}:
					default:
					}
				}
			}
			if p.Payload[2] == 0 {
				c.lowRun++
			} else {
				c.lowRun = 0
			}
			c.sns[p.SequenceNumber] = true
			if p.Marker {
				c.markers[p.SequenceNumber] = true
			}
			// A packet from before the first one received (reordered or
			// retransmitted) has an offset near 65535: not the newest.
			if off := int(p.SequenceNumber - c.firstSN); off < 1<<15 && off > c.maxOff {
				c.maxOff = off
			}
			c.lastSN = p.SequenceNumber
		} else if !video {
			c.audioPkts++
		}
		c.mu.Unlock()
		select {
		case c.notify <- struct{}{}:
		default:
		}
	}
}

// capDownlink makes the client report bps as its receive estimate (REMB).
// Both test subscribers do, so that the layers they get do not depend on
// how GCC reads the delays of a loaded test machine.
func (c *testClient) capDownlink(bps float32) {
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-c.done:
				return
			case <-tick.C:
				var ssrc uint32
				for _, tr := range c.pc.GetTransceivers() {
					if tr.Kind() == webrtc.RTPCodecTypeVideo && tr.Receiver() != nil && tr.Receiver().Track() != nil {
						ssrc = uint32(tr.Receiver().Track().SSRC())
					}
				}
				if ssrc != 0 {
					_ = c.pc.WriteRTCP([]rtcp.Packet{&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: bps, SSRCs: []uint32{ssrc}}})
				}
			}
		}
	}()
}

// waitFor waits until cond holds, re-checking whenever a packet arrives at
// any of the clients.
func waitFor(t *testing.T, what func() string, d time.Duration, cond func() bool, clients ...*testClient) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	poll := time.NewTicker(50 * time.Millisecond) // speaker pushes come without packets
	defer poll.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what())
		case <-poll.C:
		case <-clients[0].notify:
		case <-clients[len(clients)-1].notify:
		}
	}
}

// Synthetic simulcast: per frame, layer q sends one 300-byte packet, h one
// of 900 bytes, f three of 1,000 (about 72, 216 and 720 kbit/s at 30 fps).
var layerShape = [maxLayers]struct{ packets, size int }{{1, 300}, {1, 900}, {3, 1000}}

// publish sends synthetic VP8 simulcast (when video) and Opus with an RFC
// 6464 audio level from c until the test ends. VP8 payloads have a valid
// payload descriptor and key/delta bit, then the layer and frame number.
func (c *testClient) publish(video bool, level uint8) {
	t := c.t
	t.Helper()
	rids := []string{"q", "h", "f"}
	var vtracks []*webrtc.TrackLocalStaticRTP
	var vsender *webrtc.RTPSender
	if video {
		for _, rid := range rids {
			tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
				c.videoID, c.id, webrtc.WithRTPStreamID(rid))
			if err != nil {
				t.Fatal(err)
			}
			vtracks = append(vtracks, tr)
		}
		var err error
		if vsender, err = c.pc.AddTrack(vtracks[0]); err != nil {
			t.Fatal(err)
		}
		for _, tr := range vtracks[1:] {
			if err := vsender.AddEncoding(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	atrack, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", c.id)
	if err != nil {
		t.Fatal(err)
	}
	asender, err := c.pc.AddTrack(atrack)
	if err != nil {
		t.Fatal(err)
	}
	c.offer()
	select {
	case <-c.connected:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: publisher never connected", c.id)
	}
	ext := func(s *webrtc.RTPSender, uri string) uint8 {
		for _, e := range s.GetParameters().HeaderExtensions {
			if e.URI == uri {
				return uint8(e.ID)
			}
		}
		t.Fatalf("%s: extension %s not negotiated", c.id, uri)
		return 0
	}
	mid := func(s *webrtc.RTPSender) string {
		for _, tr := range c.pc.GetTransceivers() {
			if tr.Sender() == s {
				return tr.Mid()
			}
		}
		t.Fatal("no transceiver")
		return ""
	}
	var needKey [maxLayers]atomic.Bool
	var vmid string
	var midID, ridID uint8
	if video {
		vmid, midID, ridID = mid(vsender), ext(vsender, sdp.SDESMidURI), ext(vsender, sdp.SDESRTPStreamIDURI)
		for i, rid := range rids {
			go func() {
				for {
					pkts, _, err := vsender.ReadSimulcastRTCP(rid)
					if err != nil {
						return
					}
					for _, p := range pkts {
						if _, ok := p.(*rtcp.PictureLossIndication); ok {
							needKey[i].Store(true)
						}
					}
				}
			}()
		}
	}
	levelID := ext(asender, sdp.AudioLevelURI)
	go func() {
		vt := time.NewTicker(33 * time.Millisecond)
		at := time.NewTicker(20 * time.Millisecond)
		defer vt.Stop()
		defer at.Stop()
		var sn [maxLayers]uint16
		var asn uint16
		var frame, aframe uint32
		for {
			select {
			case <-c.done:
				return
			case <-at.C:
				aframe++
				p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: asn, Timestamp: aframe * 960}, Payload: make([]byte, 80)}
				asn++
				lv, _ := (&rtp.AudioLevelExtension{Level: level, Voice: true}).Marshal()
				_ = p.Header.SetExtension(levelID, lv)
				_ = atrack.WriteRTP(p)
			case <-vt.C:
				if !video {
					continue
				}
				frame++
				c.frame.Store(frame)
				for i, tr := range vtracks {
					key := frame%60 == 1 || needKey[i].Swap(false)
					shape := c.shape[i]
					for k := 0; k < shape.packets; k++ {
						pl := make([]byte, shape.size)
						if k == 0 {
							pl[0] = 0x10 // S: start of partition 0
						}
						if !key {
							pl[1] = 0x01 // P: inter frame
						}
						pl[2] = byte(i)
						binary.BigEndian.PutUint32(pl[3:], frame)
						p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: sn[i], Timestamp: frame * 3000,
							Marker: k == shape.packets-1}, Payload: pl}
						sn[i]++
						_ = p.Header.SetExtension(midID, []byte(vmid))
						_ = p.Header.SetExtension(ridID, []byte(rids[i]))
						_ = tr.WriteRTP(p)
					}
				}
			}
		}
	}()
}

func (c *testClient) snapshot() (layers [maxLayers]int, distinct, span int, audio int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.layers, len(c.sns), int(uint16(c.lastSN-c.firstSN)) + 1, c.audioPkts
}

func newTestSFU(t *testing.T) *SFU {
	t.Helper()
	s, err := New(Config{UDPAddr: "127.0.0.1:0", Tick: 100 * time.Millisecond, UpgradeHold: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestRoomSimulcastLayersAndSpeakers: a publisher sends three VP8 simulcast
// layers and Opus, a second one Opus only; two subscribers receive. The
// subscriber whose REMB says 10 Mbit/s climbs to the top layer in one
// continuous stream; the one whose REMB says 150 kbit/s stays on the low
// layer; the loudest
// publisher leads the speaker list; a NACK is answered from the cache.
func TestRoomSimulcastLayersAndSpeakers(t *testing.T) {
	s := newTestSFU(t)
	speakers := make(chan []Speaker, 64)
	room, err := s.NewRoom(RoomConfig{OnSpeakers: func(l []Speaker) {
		select {
		case speakers <- l:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sub1 := newTestClient(t, room, "sub1")
	sub1.subscribe()
	sub2 := newTestClient(t, room, "sub2")
	sub2.subscribe()
	sub1.capDownlink(10_000_000)
	sub2.capDownlink(150_000)
	pubA := newTestClient(t, room, "loud")
	pubA.publish(true, 10)
	pubB := newTestClient(t, room, "quiet")
	pubB.publish(false, 40)

	state := func() string {
		l1, _, _, _ := sub1.snapshot()
		l2, _, _, _ := sub2.snapshot()
		return fmt.Sprintf("sub1 on the top layer and sub2 on the low one: sub1 layers %v (estimate %d), sub2 layers %v (estimate %d), stats %+v",
			l1, sub1.peer.Estimate(), l2, sub2.peer.Estimate(), room.Stats())
	}
	waitFor(t, state, 30*time.Second, func() bool {
		l1, _, _, _ := sub1.snapshot()
		sub2.mu.Lock()
		run := sub2.lowRun
		sub2.mu.Unlock()
		return l1[2] >= 30 && run >= 90
	}, sub1, sub2)

	l1, distinct, span, audio1 := sub1.snapshot()
	if l1[0] == 0 {
		t.Errorf("sub1 layers %v: it should have started on the low layer", l1)
	}
	// One continuous stream across the switches: every SN from the first to
	// the newest arrived (loopback loses nothing; NACKs would fill a gap).
	if distinct != span {
		t.Errorf("sub1 got %d distinct SNs over a span of %d: the stream has holes", distinct, span)
	}
	if audio1 == 0 {
		t.Error("sub1 got no audio")
	}
	// sub2 may have climbed before its first REMB arrived (TWCC feedback
	// comes first); it is on the low layer now (90 packets in a row, 3 s of
	// video) and its down track stays there.
	l2, _, _, _ := sub2.snapshot()
	if d := sub2Down(t, room); d.target() != 0 {
		t.Errorf("sub2 (150 kbit/s) is forwarded layer %d, want 0 (layers received %v)", d.target(), l2)
	}

	// Speakers: the louder publisher first, both above the threshold.
	deadline := time.After(20 * time.Second)
	for ok := false; !ok; {
		select {
		case l := <-speakers:
			ok = len(l) == 2 && l[0].ID == "loud" && l[1].ID == "quiet" && l[0].Level > l[1].Level
		case <-deadline:
			t.Fatal("no speaker list with loud before quiet")
		}
	}

	// A NACK from sub1 for a packet it got is answered from the cache.
	sub1.mu.Lock()
	ssrc, sn := sub1.videoSSRC, sub1.lastSN
	sub1.mu.Unlock()
	before := room.Stats().Retransmitted
	if err := sub1.pc.WriteRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: ssrc, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{sn})}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() string { return "the retransmission" }, 10*time.Second, func() bool { return room.Stats().Retransmitted > before }, sub1)

	// Keyframe requests are throttled per layer: at most one per 500 ms for
	// each of the three layers, however many subscribers switch.
	st := room.Stats()
	if max := uint64(3 * (time.Since(start)/pliInterval + 1)); st.PLIs == 0 || st.PLIs > max {
		t.Errorf("%d PLIs in %v, want 1..%d", st.PLIs, time.Since(start), max)
	}
	t.Logf("sub1 layers %v, sub2 layers %v, stats %+v", l1, l2, st)
}

// sub2Down returns the video down track of participant sub2.
func sub2Down(t *testing.T, r *Room) *DownTrack {
	t.Helper()
	p := r.Peer("sub2")
	p.mu.Lock()
	defer p.mu.Unlock()
	for u, d := range p.downs {
		if u.kind == webrtc.RTPCodecTypeVideo {
			return d
		}
	}
	t.Fatal("sub2 has no video down track")
	return nil
}

// TestCandidatesFollowTheirDescription: the SFU sends none of its ICE
// candidates before the description they belong to: its answer to a
// client's first offer, and its ICE-restart offer (pion gathers anew from
// CreateOffer on, before the offer exists). A browser refuses a candidate
// that comes before any remote description, and files one that comes
// before a restart offer under the old ICE generation.
func TestCandidatesFollowTheirDescription(t *testing.T) {
	s := newTestSFU(t)
	room, err := s.NewRoom(RoomConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var sent []Signal // what the SFU sent the client, in order
	var peer *Peer
	c := newClient(t, "a", func(send func(Signal)) (func(Signal) error, error) {
		p, err := room.Join("a", func(s Signal) {
			mu.Lock()
			sent = append(sent, s)
			mu.Unlock()
			send(s)
		})
		if err != nil {
			return nil, err
		}
		peer = p
		return p.Signal, nil
	})
	c.peer = peer
	c.subscribe()
	// what lists the kinds of signals sent from index from on, in order.
	what := func(from int) string {
		mu.Lock()
		defer mu.Unlock()
		var kinds []string
		for _, s := range sent[from:] {
			switch {
			case s.Description != nil:
				kinds = append(kinds, fmt.Sprintf("%s(restart=%v)", s.Description.Type, s.Restart))
			case s.Candidate != nil:
				kinds = append(kinds, "candidate")
			}
		}
		return strings.Join(kinds, " ")
	}
	// candidateAfter: a candidate was sent at index from or later.
	candidateAfter := func(from int) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, s := range sent[from:] {
				if s.Candidate != nil {
					return true
				}
			}
			return false
		}
	}
	gathered := func() bool { return peer.pc.ICEGatheringState() == webrtc.ICEGatheringStateComplete }
	waitFor(t, func() string { return "the SFU's first candidates: sent " + what(0) }, 30*time.Second, func() bool { return gathered() && candidateAfter(0)() }, c)
	mu.Lock()
	first := sent[0]
	mark := len(sent)
	mu.Unlock()
	if first.Description == nil || first.Description.Type != webrtc.SDPTypeAnswer {
		t.Errorf("the SFU's first signals: %s; want the answer first", what(0))
	}

	select {
	case <-c.connected:
	case <-time.After(30 * time.Second):
		t.Fatal("never connected")
	}
	peer.RestartICE()
	waitFor(t, func() string { return "candidates after the restart: sent " + what(mark) }, 30*time.Second, func() bool { return gathered() && candidateAfter(mark)() }, c)
	mu.Lock()
	next := sent[mark]
	mu.Unlock()
	if next.Description == nil || !next.Restart {
		t.Fatalf("the SFU's signals after RestartICE: %s; want the restart offer first", what(mark))
	}
	// And the connection comes back on the new credentials (the client's
	// new candidates may come before its answer: the SFU holds them).
	waitFor(t, func() string { return "the connection on the restart's credentials" }, 30*time.Second, func() bool {
		return iceUfrag(c.pc.CurrentRemoteDescription()) == iceUfrag(next.Description) && peer.pc.ICEConnectionState() == webrtc.ICEConnectionStateConnected
	}, c)
}

// TestCandidatesWaitForTheAnswer: while an offer of the SFU's is out, a
// client's candidates are held and applied once its answer is: after an
// ICE restart offer they belong to the answer's new ICE generation, and
// pion drops a candidate whose ufrag is not the current remote one. (A
// pion client trickles as soon as it gathers, so its new candidates can
// come before its answer.)
func TestCandidatesWaitForTheAnswer(t *testing.T) {
	s := newTestSFU(t)
	room, err := s.NewRoom(RoomConfig{})
	if err != nil {
		t.Fatal(err)
	}
	c := newTestClient(t, room, "a")
	c.subscribe()
	select {
	case <-c.connected:
	case <-time.After(30 * time.Second):
		t.Fatal("never connected")
	}
	held := func() int {
		c.peer.mu.Lock()
		defer c.peer.mu.Unlock()
		return len(c.peer.candidates)
	}
	// Stop the client's signaling loop, so that the restart offer waits
	// unanswered.
	release := make(chan struct{})
	c.do <- func() { <-release }
	c.peer.RestartICE()
	if st := c.peer.pc.SignalingState(); st != webrtc.SignalingStateHaveLocalOffer {
		t.Fatalf("after RestartICE the SFU's signaling state is %s, want have-local-offer", st)
	}
	cand := webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host ufrag newgeneration"}
	if err := c.peer.Signal(Signal{Candidate: &cand}); err != nil {
		t.Fatal(err)
	}
	if n := held(); n != 1 {
		t.Errorf("the SFU holds %d candidates while its offer is out, want 1", n)
	}
	close(release)
	waitFor(t, func() string { return fmt.Sprintf("the answer (%d candidates still held)", held()) }, 30*time.Second, func() bool {
		return c.peer.pc.SignalingState() == webrtc.SignalingStateStable && held() == 0
	}, c)
}
