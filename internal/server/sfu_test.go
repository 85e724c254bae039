package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/sori-dev/sori/internal/config"
)

// sfuClient is a participant in SFU mode: one pion PeerConnection to the
// pseudo-participant "sfu", signaling through its own Sori connection. It
// offers first with its video track, answers the SFU's offers, and counts
// the RTP it receives per MediaStream id (the publisher's participant id).
type sfuClient struct {
	t     *testing.T
	name  string
	cc    *callClient
	room  string
	pc    *webrtc.PeerConnection
	track *webrtc.TrackLocalStaticRTP

	mu       sync.Mutex
	pending  []webrtc.ICECandidateInit
	received map[string]int
	modes    []string
	// offers: the SFU's offers applied; answers: the answers to them
	// the server acknowledged (it applies a signal before answering the
	// rpc).
	offers, answers int
	mids            map[string]string // the m-line each publisher's track came on, by its stream id
	// notify is signalled (without blocking) after every packet received.
	notify chan struct{}
}

func newSFUClient(t *testing.T, name string, cc *callClient, room string) *sfuClient {
	t.Helper()
	return newSFUClientWith(t, name, cc, room, webrtc.Configuration{})
}

// newSFUClientWith is newSFUClient with a configuration (ICE servers, a
// relay-only policy).
func newSFUClientWith(t *testing.T, name string, cc *callClient, room string, conf webrtc.Configuration) *sfuClient {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "camera", name)
	if err != nil {
		t.Fatal(err)
	}
	c := &sfuClient{t: t, name: name, cc: cc, room: room, pc: pc, track: track, received: map[string]int{}, mids: map[string]string{}, notify: make(chan struct{}, 1)}
	pc.OnTrack(func(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		for _, x := range pc.GetTransceivers() {
			if x.Receiver() == recv {
				c.mu.Lock()
				c.mids[tr.StreamID()] = x.Mid()
				c.mu.Unlock()
			}
		}
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			c.mu.Lock()
			c.received[tr.StreamID()]++
			c.mu.Unlock()
			select {
			case c.notify <- struct{}{}:
			default:
			}
		}
	})
	pc.OnICECandidate(func(ic *webrtc.ICECandidate) {
		if ic != nil {
			_, _, _ = cc.rpc("call.signal", map[string]any{"room": room, "to": "sfu", "candidate": ic.ToJSON()})
		}
	})
	return c
}

// connect adds the track, sends the first offer to "sfu" and starts
// handling the SFU's signals and sending video.
func (c *sfuClient) connect(ctx context.Context) {
	c.t.Helper()
	if _, err := c.pc.AddTrack(c.track); err != nil {
		c.t.Fatal(err)
	}
	offer, err := c.pc.CreateOffer(nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.pc.SetLocalDescription(offer); err != nil {
		c.t.Fatal(err)
	}
	c.cc.must("call.signal", map[string]any{"room": c.room, "to": "sfu", "description": offer})
	// The handler is waited for before the test completes (an Errorf
	// after that panics), and what fails once ctx has ended (the test is
	// done with this client, or closed its connection) is not an error.
	handled := make(chan struct{})
	go func() {
		defer close(handled)
		if err := c.handle(ctx); err != nil && ctx.Err() == nil {
			c.t.Errorf("%s: %v", c.name, err)
		}
	}()
	c.t.Cleanup(func() { <-handled })
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		// VP8: start of partition 0, key frame (every packet, so that any
		// packet can start a subscriber's stream).
		payload := []byte{0x10, 0x00, 0x9d, 0x01, 0x2a, 0x01, 0x02, 0x03, 0x04}
		for seq := uint16(0); ; seq++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			_ = c.track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: seq, Timestamp: uint32(seq) * 1800}, Payload: payload})
		}
	}()
}

func (c *sfuClient) handle(ctx context.Context) error {
	for {
		var m map[string]any
		select {
		case <-ctx.Done():
			return nil
		case m = <-c.cc.pushes:
		}
		if m == nil {
			return nil
		}
		if m["push"] != "call" {
			continue
		}
		if m["event"] == "mode" {
			c.mu.Lock()
			c.modes = append(c.modes, m["mode"].(string))
			c.mu.Unlock()
		}
		if m["event"] != "signal" {
			continue
		}
		if m["from"] != "sfu" {
			return fmt.Errorf("signal from %v in SFU mode", m["from"])
		}
		if d, ok := m["description"]; ok {
			var desc webrtc.SessionDescription
			b, _ := json.Marshal(d)
			if err := json.Unmarshal(b, &desc); err != nil {
				return err
			}
			if err := c.pc.SetRemoteDescription(desc); err != nil {
				return fmt.Errorf("set remote %s: %w", desc.Type, err)
			}
			for _, ic := range c.pending {
				_ = c.pc.AddICECandidate(ic)
			}
			c.pending = nil
			if desc.Type == webrtc.SDPTypeOffer {
				c.mu.Lock()
				c.offers++
				c.mu.Unlock()
				answer, err := c.pc.CreateAnswer(nil)
				if err != nil {
					return err
				}
				if err := c.pc.SetLocalDescription(answer); err != nil {
					return err
				}
				if _, perr, err := c.cc.rpc("call.signal", map[string]any{"room": c.room, "to": "sfu", "description": answer}); err != nil || perr != nil {
					return fmt.Errorf("answer: %v %v", perr, err)
				}
				c.mu.Lock()
				c.answers++
				c.mu.Unlock()
			}
		}
		if cand, ok := m["candidate"]; ok {
			var ci webrtc.ICECandidateInit
			b, _ := json.Marshal(cand)
			if err := json.Unmarshal(b, &ci); err != nil {
				return err
			}
			if c.pc.RemoteDescription() == nil {
				c.pending = append(c.pending, ci)
			} else if err := c.pc.AddICECandidate(ci); err != nil {
				return err
			}
		}
	}
}

// waitGot waits until c has received n packets from participant from,
// woken by each packet (the deadline only ends a hung test).
func (c *sfuClient) waitGot(from string, n int) {
	c.t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for c.got(from) < n {
		select {
		case <-c.notify:
		case <-deadline.C:
			c.mu.Lock()
			defer c.mu.Unlock()
			c.t.Fatalf("%s got %d packets from %s, want %d (%v)", c.name, c.received[from], from, n, c.received)
		}
	}
}

func (c *sfuClient) got(from string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.received[from]
}

// TestCallMovesToSFU: with --mesh-limit 2 and the SFU on, the third join
// moves the call to the SFU (the two already in get a "mode" push, the
// joiner's result says "sfu"), every participant connects one peer
// connection to "sfu" through call.signal, and each receives the other two's
// video, named by their participant ids.
func TestCallMovesToSFU(t *testing.T) {
	if testing.Short() {
		t.Skip("WebRTC end-to-end")
	}
	ts := startServer(t, func(c *config.Config) {
		c.MeshLimit = 2
		c.SFUListen = "127.0.0.1:0"
		c.TURNEnabled = false
	})
	room, ccs := callRoom(t, ts, "ann", "ben", "cy")
	var ids []string
	for i, cc := range ccs {
		res := cc.must("call.join", map[string]any{"room": room})
		ids = append(ids, res["participant"].(string))
		want := "mesh"
		if i == 2 {
			want = "sfu"
			if num(res["limit"]) != 50 {
				t.Fatalf("sfu limit %v, want 50", res["limit"])
			}
		}
		if res["mode"] != want {
			t.Fatalf("join %d: mode %v, want %s", i, res["mode"], want)
		}
	}
	for _, cc := range ccs[:2] {
		if m := cc.nextCall("mode"); m["mode"] != "sfu" {
			t.Fatalf("mode push %v", m)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var clients []*sfuClient
	for i, cc := range ccs {
		c := newSFUClient(t, []string{"ann", "ben", "cy"}[i], cc, room)
		c.connect(ctx)
		clients = append(clients, c)
	}
	for i, c := range clients {
		for j, id := range ids {
			if i != j {
				c.waitGot(id, 10)
			}
		}
	}
	// call.quality "off": ann stops receiving ben's video and still gets
	// cy's; the packets the SFU sent of ben's before it have all arrived once
	// 50 of cy's sent after it have (one socket, in order; a second for a
	// lagging reader goroutine) — 20 more, and ben's count must not have
	// moved. "auto" brings ben's video back.
	ann := clients[0]
	ccs[0].must("call.quality", map[string]any{"room": room, "peer": ids[1], "layer": "off"})
	ann.waitGot(ids[2], ann.got(ids[2])+50)
	before := ann.got(ids[1])
	ann.waitGot(ids[2], ann.got(ids[2])+20)
	if n := ann.got(ids[1]); n != before {
		t.Errorf("ann turned ben's video off, yet got %d more packets of it", n-before)
	}
	ccs[0].must("call.quality", map[string]any{"room": room, "peer": ids[1], "layer": "auto"})
	ann.waitGot(ids[1], before+10)
	ccs[0].refused("call.quality", map[string]any{"room": room, "peer": ids[1], "layer": "best"}, 101)
	ccs[0].refused("call.quality", map[string]any{"room": room, "peer": ids[0], "layer": "low"}, 101)
	ccs[0].refused("call.quality", map[string]any{"room": room, "peer": "nobody", "layer": "low"}, 117)
	// "sfu" is not a participant in mesh calls, and participants cannot
	// reach each other directly in SFU mode.
	ccs[0].refused("call.signal", map[string]any{"room": room, "to": ids[1], "restart": true}, 117)
}

// TestSFUThroughRelay: three pion peers that may use relay candidates only
// (ICETransportPolicy relay, credentials from their call.join results) move
// to the SFU and exchange video through the embedded TURN server: each
// receives the other two, and each one's selected pair is its relay
// candidate against the SFU's own media port. (Loopback is allow-listed for
// the relay, as any test on one machine must; TestMayRelayToSelf checks
// the rule that lets a public server's relay reach its own SFU port.)
func TestSFUThroughRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("WebRTC end-to-end")
	}
	ts := startServer(t, func(c *config.Config) {
		c.MeshLimit = 2
		c.SFUListen = "127.0.0.1:0"
		c.TURNAllowPeers = []string{"127.0.0.1"}
	})
	room, ccs := callRoom(t, ts, "ann", "ben", "cy")
	var ids []string
	var joins []map[string]any
	for _, cc := range ccs {
		res := cc.must("call.join", map[string]any{"room": room})
		ids = append(ids, res["participant"].(string))
		joins = append(joins, res)
	}
	if joins[2]["mode"] != "sfu" {
		t.Fatalf("third join: mode %v, want sfu", joins[2]["mode"])
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var clients []*sfuClient
	for i, cc := range ccs {
		conf := webrtc.Configuration{ICEServers: iceServersOf(joins[i]), ICETransportPolicy: webrtc.ICETransportPolicyRelay}
		c := newSFUClientWith(t, []string{"ann", "ben", "cy"}[i], cc, room, conf)
		c.connect(ctx)
		clients = append(clients, c)
	}
	for i, c := range clients {
		for j, id := range ids {
			if i != j {
				c.waitGot(id, 10)
			}
		}
	}
	sfuPort := 0
	for _, c := range clients {
		var pair *webrtc.ICECandidatePair
		for _, tr := range c.pc.GetTransceivers() {
			if tr.Sender() != nil && tr.Sender().Transport() != nil {
				var err error
				if pair, err = tr.Sender().Transport().ICETransport().GetSelectedCandidatePair(); err != nil {
					t.Fatal(err)
				}
				break
			}
		}
		if pair == nil || pair.Local.Typ != webrtc.ICECandidateTypeRelay || pair.Remote.Typ != webrtc.ICECandidateTypeHost {
			t.Fatalf("%s: selected pair %v, want its relay candidate to the SFU's host candidate", c.name, pair)
		}
		if sfuPort == 0 {
			sfuPort = int(pair.Remote.Port)
		} else if int(pair.Remote.Port) != sfuPort {
			t.Fatalf("%s reaches the SFU on port %d, another on %d: one media port per node", c.name, pair.Remote.Port, sfuPort)
		}
	}
	if n := scrapeGauge(t, ts, "sori_turn_allocations"); n < 3 {
		t.Fatalf("sori_turn_allocations %v while three relayed peers send, want at least 3", n)
	}
}

// sfuMLines returns the m-lines the SFU added to c's connection (mid
// "s…") in its last description that c applied, and how many of them
// send.
func (c *sfuClient) sfuMLines() (mids []string, sending int) {
	c.t.Helper()
	desc := c.pc.CurrentRemoteDescription()
	if desc == nil {
		return nil, 0
	}
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(desc.SDP); err != nil {
		c.t.Fatal(err)
	}
	for _, m := range parsed.MediaDescriptions {
		mid, _ := m.Attribute("mid")
		if !strings.HasPrefix(mid, "s") {
			continue
		}
		mids = append(mids, mid)
		_, sendrecv := m.Attribute("sendrecv")
		_, sendonly := m.Attribute("sendonly")
		if sendrecv || sendonly {
			sending++
		}
	}
	return mids, sending
}

// TestSFUReusesMLinesAcrossJoins: in an SFU call of ann and ben (mesh
// limit 2, and no return to mesh), five more members in turn join, publish
// video and leave. ann's connection to the SFU keeps the two m-lines of
// the peak (ben's video and the visitor's) instead of gaining one per
// visitor: each visitor's video reaches her on the m-line the last one's
// used, and she decodes no stale track.
func TestSFUReusesMLinesAcrossJoins(t *testing.T) {
	if testing.Short() {
		t.Skip("WebRTC end-to-end")
	}
	ts := startServer(t, func(c *config.Config) {
		c.MeshLimit = 2
		c.SFUListen = "127.0.0.1:0"
		c.TURNEnabled = false
		c.MeshReturn = config.Duration(time.Hour)
	})
	names := []string{"ann", "ben", "v1", "v2", "v3", "v4", "v5"}
	room, ccs := callRoom(t, ts, names...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ids []string
	for _, cc := range ccs[:2] {
		ids = append(ids, cc.must("call.join", map[string]any{"room": room})["participant"].(string))
	}
	var ann, ben *sfuClient
	var videoMid string
	for i, cc := range ccs[2:] {
		name := names[2+i]
		res := cc.must("call.join", map[string]any{"room": room})
		if res["mode"] != "sfu" {
			t.Fatalf("%s joined a %v call, want sfu", name, res["mode"])
		}
		id := res["participant"].(string)
		if i == 0 {
			// The third join moved the call to the SFU.
			for _, c := range ccs[:2] {
				if m := c.nextCall("mode"); m["mode"] != "sfu" {
					t.Fatalf("mode push %v", m)
				}
			}
			ann, ben = newSFUClient(t, "ann", ccs[0], room), newSFUClient(t, "ben", ccs[1], room)
			ann.connect(ctx)
			ben.connect(ctx)
			ann.waitGot(ids[1], 10)
		}
		vctx, vcancel := context.WithCancel(ctx)
		v := newSFUClient(t, name, cc, room)
		v.connect(vctx)
		ann.waitGot(id, 10)
		mids, sending := ann.sfuMLines()
		if len(mids) > 2 || sending != 2 {
			t.Errorf("with %s in the call ann's connection has SFU m-lines %v (%d sending), want 2, both sending (ben's video and %s's)", name, mids, sending, name)
		}
		ben.waitGot(id, 10)
		ann.mu.Lock()
		mid := ann.mids[id] // the m-line the visitor's video came on
		ann.mu.Unlock()
		if i == 0 {
			videoMid = mid
		} else if mid != videoMid {
			t.Errorf("%s's video came on m-line %q, want the freed %q", name, mid, videoMid)
		}
		cc.must("call.leave", map[string]any{"room": room})
		vcancel()
		_ = v.pc.Close()
		// The round that frees the m-line: ann applied the SFU's offer
		// without the visitor's track, and the server has her answer.
		deadline := time.Now().Add(30 * time.Second)
		for {
			ann.mu.Lock()
			done := ann.offers == ann.answers
			ann.mu.Unlock()
			if _, sending := ann.sfuMLines(); done && sending == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("ann's connection never dropped %s's m-line: %v", name, fmt.Sprint(ann.sfuMLines()))
			}
			select {
			case <-time.After(20 * time.Millisecond):
			case <-ann.notify:
			}
		}
	}
}
