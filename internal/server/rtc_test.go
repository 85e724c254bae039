package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/sori-dev/sori/internal/auth"
	"github.com/sori-dev/sori/internal/config"
)

// callClient is a protocol client for calls: rpcs may be sent from any
// goroutine (pion callbacks send ICE candidates), replies are matched by id,
// and pushes are queued in order on pushes.
type callClient struct {
	t       *testing.T
	cl      *client
	mu      sync.Mutex
	nextID  uint64
	waiting map[uint64]chan map[string]any
	pushes  chan map[string]any
}

func newCallClient(t *testing.T, cl *client) *callClient {
	cc := &callClient{t: t, cl: cl, nextID: 1000, waiting: map[uint64]chan map[string]any{}, pushes: make(chan map[string]any, 1000)}
	go cc.dispatch()
	return cc
}

func (cc *callClient) dispatch() {
	defer close(cc.pushes)
	for m := range cc.cl.frames {
		if id, ok := m["id"]; ok {
			cc.mu.Lock()
			ch := cc.waiting[num(id)]
			delete(cc.waiting, num(id))
			cc.mu.Unlock()
			if ch != nil {
				ch <- m
			}
			continue
		}
		cc.pushes <- m
	}
}

// rpc calls method and returns its result or its error object.
func (cc *callClient) rpc(method string, data any) (result, perr map[string]any, err error) {
	reply := make(chan map[string]any, 1)
	cc.mu.Lock()
	cc.nextID++
	id := cc.nextID
	cc.waiting[id] = reply
	cc.mu.Unlock()
	b, _ := json.Marshal(map[string]any{"id": id, "op": "rpc", "method": method, "data": data})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cc.cl.c.Write(ctx, websocket.MessageText, b); err != nil {
		return nil, nil, fmt.Errorf("write %s: %w", method, err)
	}
	select {
	case m := <-reply:
		r, _ := m["result"].(map[string]any)
		e, _ := m["error"].(map[string]any)
		return r, e, nil
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("%s: no reply within 10s", method)
	}
}

// must calls method and fails the test unless it succeeds.
func (cc *callClient) must(method string, data any) map[string]any {
	cc.t.Helper()
	res, perr, err := cc.rpc(method, data)
	if err != nil || perr != nil {
		cc.t.Fatalf("%s %v: %v %v", method, data, perr, err)
	}
	return res
}

// refused calls method and fails the test unless it fails with code.
func (cc *callClient) refused(method string, data any, code int) map[string]any {
	cc.t.Helper()
	_, perr, err := cc.rpc(method, data)
	if err != nil {
		cc.t.Fatal(err)
	}
	if perr == nil || int(perr["code"].(float64)) != code {
		cc.t.Fatalf("%s %v: error %v, want code %d", method, data, perr, code)
	}
	return perr
}

// nextCall returns the next call push with event, skipping others.
func (cc *callClient) nextCall(event string) map[string]any {
	cc.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-cc.pushes:
			if !ok {
				cc.t.Fatalf("connection closed while waiting for a %q push", event)
			}
			if m["push"] == "call" && m["event"] == event {
				return m
			}
		case <-deadline:
			cc.t.Fatalf("no %q push within 10s", event)
		}
	}
}

// callRoom creates a chat room owned by the first user with the others as
// members, and connects each of them for calls.
func callRoom(t *testing.T, ts *testServer, names ...string) (room string, ccs []*callClient) {
	t.Helper()
	room, users := chatRoomOf(t, ts, names...)
	for _, u := range users {
		ccs = append(ccs, newCallClient(t, connectChat(t, ts, u)))
	}
	return room, ccs
}

// chatRoomOf signs the users up and creates a private chat room owned by the
// first with the others as members.
func chatRoomOf(t *testing.T, ts *testServer, names ...string) (room string, users []chatUser) {
	t.Helper()
	users = make([]chatUser, len(names))
	for i, n := range names {
		users[i] = signup(t, ts.URL, n)
	}
	r := users[0].call(t, ts, "POST", "/api/v1/rooms", map[string]any{"name": "call-" + names[0], "kind": "private"}, http.StatusCreated)
	id := int64(r["id"].(float64))
	for _, u := range users[1:] {
		users[0].call(t, ts, "POST", fmt.Sprintf("/api/v1/rooms/%d/members", id), map[string]any{"username": u.name}, http.StatusCreated)
	}
	return fmt.Sprint(id), users
}

func participantsOf(res map[string]any) []map[string]any {
	var out []map[string]any
	for _, p := range res["participants"].([]any) {
		out = append(out, p.(map[string]any))
	}
	return out
}

func TestCallSignalingRolesStateAndLeave(t *testing.T) {
	ts := startServer(t, nil)
	room, ccs := callRoom(t, ts, "alice", "bob")
	alice, bob := ccs[0], ccs[1]

	ra := alice.must("call.join", map[string]any{"room": room, "state": map[string]any{"camera": true}})
	if ra["mode"] != "mesh" || num(ra["limit"]) != 4 || len(participantsOf(ra)) != 0 || ra["room"] != room {
		t.Fatalf("alice's join: %v", ra)
	}
	ice := ra["ice_servers"].([]any)
	if len(ice) != 2 || !strings.HasSuffix(ice[1].(map[string]any)["username"].(string), ":alice") {
		t.Fatalf("ice servers %v: want STUN and TURN with alice's credentials", ice)
	}
	// The chat room id is a number in the chat API; call.join takes it as is.
	rb := bob.must("call.join", map[string]any{"room": json.Number(room)})
	ps := participantsOf(rb)
	if len(ps) != 1 || ps[0]["id"] != ra["participant"] || ps[0]["user"] != "alice" || ps[0]["polite"] != false ||
		ps[0]["state"].(map[string]any)["camera"] != true {
		t.Fatalf("bob's participants %v: want alice, bob impolite (bob offers)", ps)
	}
	joined := alice.nextCall("joined")
	if p := joined["participant"].(map[string]any); joined["room"] != room || p["id"] != rb["participant"] || p["user"] != "bob" || p["polite"] != true {
		t.Fatalf("alice's joined push %v: want bob, alice polite", joined)
	}

	// A signal reaches exactly its target, as sent, with the sender's id.
	bob.must("call.signal", map[string]any{"room": room, "to": ra["participant"], "restart": true,
		"description": map[string]any{"type": "offer", "sdp": "v=0\r\n"}})
	sig := alice.nextCall("signal")
	if sig["from"] != rb["participant"] || sig["restart"] != true || sig["description"].(map[string]any)["sdp"] != "v=0\r\n" {
		t.Fatalf("alice's signal push %v", sig)
	}
	bob.refused("call.signal", map[string]any{"room": room, "to": "nobody", "restart": true}, 117)
	bob.refused("call.signal", map[string]any{"room": room, "to": ra["participant"]}, 101)

	st := bob.must("call.state", map[string]any{"room": room, "muted": true})
	if st["muted"] != true || st["camera"] != false {
		t.Fatalf("bob's state %v", st)
	}
	if p := alice.nextCall("state")["participant"].(map[string]any); p["id"] != rb["participant"] || p["state"].(map[string]any)["muted"] != true {
		t.Fatalf("alice's state push %v", p)
	}

	bob.must("call.leave", map[string]any{"room": room})
	left := alice.nextCall("left")
	if left["reason"] != "left" || left["participant"].(map[string]any)["id"] != rb["participant"] {
		t.Fatalf("alice's left push %v", left)
	}
	bob.refused("call.leave", map[string]any{"room": room}, 117)

	// A connection that goes away leaves its calls.
	rb = bob.must("call.join", map[string]any{"room": room})
	alice.nextCall("joined")
	_ = bob.cl.c.CloseNow()
	left = alice.nextCall("left")
	if left["reason"] != "disconnected" || left["participant"].(map[string]any)["id"] != rb["participant"] {
		t.Fatalf("alice's left push after bob's disconnect %v", left)
	}
}

func TestCallJoinRefusals(t *testing.T) {
	ts := startServer(t, nil)
	room, ccs := callRoom(t, ts, "ann", "ben", "cy", "dee", "eli")
	var last map[string]any
	for _, cc := range ccs[:4] {
		last = cc.must("call.join", map[string]any{"room": room})
	}
	perr := ccs[4].refused("call.join", map[string]any{"room": room}, 119)
	if !strings.Contains(perr["message"].(string), "4") {
		t.Fatalf("mesh limit error %v: want the limit in the message", perr)
	}
	ccs[0].refused("call.join", map[string]any{"room": room}, 118)
	// Choosing a quality needs the SFU: in a mesh the sender decides.
	annID := participantsOf(last)[0]["id"]
	if perr := ccs[3].refused("call.quality", map[string]any{"room": room, "peer": annID, "layer": "low"}, 123); !strings.Contains(perr["message"].(string), "SFU") {
		t.Fatalf("call.quality in a mesh: %v, want a message naming the SFU", perr)
	}
	// Not a member of the room: refused, and nobody in the call hears of it.
	outsider := newCallClient(t, connectChat(t, ts, signup(t, ts.URL, "mallory")))
	outsider.refused("call.join", map[string]any{"room": room}, 104)
	outsider.refused("call.join", map[string]any{"room": "999"}, 104)
	outsider.refused("call.join", map[string]any{"room": "bad room"}, 101)
	outsider.refused("call.signal", map[string]any{"room": room, "to": "x", "restart": true}, 117)

	// A place freed by a leave can be taken.
	ccs[1].must("call.leave", map[string]any{"room": room})
	ccs[4].must("call.join", map[string]any{"room": room})
	for _, cc := range []*callClient{ccs[0], ccs[2], ccs[3]} {
		cc.nextCall("left")
		if p := cc.nextCall("joined")["participant"].(map[string]any); p["user"] != "eli" {
			t.Fatalf("joined push %v: want eli", p)
		}
	}
	select {
	case m := <-outsider.pushes:
		t.Fatalf("the refused outsider got a push: %v", m)
	default:
	}
}

func TestCallMeshLimitIsConfigurable(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.MeshLimit = 2 })
	room, ccs := callRoom(t, ts, "ann", "ben", "cy")
	if res := ccs[0].must("call.join", map[string]any{"room": room}); num(res["limit"]) != 2 {
		t.Fatalf("limit %v", res["limit"])
	}
	ccs[1].must("call.join", map[string]any{"room": room})
	ccs[2].refused("call.join", map[string]any{"room": room}, 119)
}

func TestICEServersEndpoint(t *testing.T) {
	ts := startServer(t, nil)
	get := func(auth string) (*http.Response, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/rtc/ice-servers", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp, out
	}
	expired, err := ts.Verifier().Mint(auth.NewClaims("zed", time.Minute, time.Now().Add(-time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	for _, authz := range []string{"", "Bearer", "Bearer not-a-jwt", "apikey " + ts.APIKey, "Bearer " + expired} {
		if resp, out := get(authz); resp.StatusCode != http.StatusUnauthorized || out["error"] == nil {
			t.Fatalf("%q: status %d %v, want 401 with an error", authz, resp.StatusCode, out)
		}
	}
	resp, out := get("Bearer " + ts.token(t, "zed", time.Hour))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d %v", resp.StatusCode, out)
	}
	list := out["ice_servers"].([]any)
	if len(list) != 2 {
		t.Fatalf("ice servers %v: want STUN and TURN", list)
	}
	stun, turn := list[0].(map[string]any), list[1].(map[string]any)
	if u := stun["urls"].([]any)[0].(string); !strings.HasPrefix(u, "stun:127.0.0.1:") {
		t.Fatalf("stun url %q", u)
	}
	if turn["credential"] == "" || !strings.HasSuffix(turn["username"].(string), ":zed") || len(turn["urls"].([]any)) != 2 {
		t.Fatalf("turn server %v: want UDP and TCP URLs with zed's credentials", turn)
	}

	// TURN off: calls still work, with no ICE servers.
	off := startServer(t, func(c *config.Config) { c.TURNEnabled = false })
	req, _ := http.NewRequest(http.MethodGet, off.URL+"/rtc/ice-servers", nil)
	req.Header.Set("Authorization", "Bearer "+off.token(t, "zed", time.Hour))
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(r2.Body).Decode(&body)
	if l, ok := body["ice_servers"].([]any); r2.StatusCode != http.StatusOK || !ok || len(l) != 0 {
		t.Fatalf("TURN off: %d %v, want an empty list", r2.StatusCode, body)
	}
}

// mediaPeer is one side of a call: a pion PeerConnection restricted to
// loopback, signaling through a callClient, sending synthetic VP8 RTP and
// counting what arrives.
type mediaPeer struct {
	t        *testing.T
	name     string
	cc       *callClient
	room     string
	pc       *webrtc.PeerConnection
	track    *webrtc.TrackLocalStaticRTP
	remoteMu sync.Mutex
	remote   string // the other participant's id
	received atomic.Int64
	arrived  chan struct{}             // signalled (without blocking) after each packet
	pending  []webrtc.ICECandidateInit // candidates that came before the remote description
}

func newMediaPeer(t *testing.T, name string, cc *callClient, room string, join map[string]any, relayOnly bool) *mediaPeer {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() }) // loopback only
	if !relayOnly {
		// The peers also gather server-reflexive candidates from the
		// embedded STUN server (on loopback, the host's own address). The
		// controlling agent nominates the best pair that is valid once a
		// type's acceptance wait has passed (srflx: 500 ms), so under load a
		// srflx pair that validated before the host pair was chosen once.
		// The direct case is about host candidates: srflx pairs are never
		// nominatable within the test.
		se.SetSrflxAcceptanceMinWait(time.Hour)
	}
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se))

	conf := webrtc.Configuration{ICEServers: iceServersOf(join)}
	if relayOnly {
		conf.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := api.NewPeerConnection(conf)
	if err != nil {
		t.Fatal(err)
	}
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", name)
	if err != nil {
		t.Fatal(err)
	}
	p := &mediaPeer{t: t, name: name, cc: cc, room: room, pc: pc, track: track, arrived: make(chan struct{}, 1)}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			p.received.Add(1)
			select {
			case p.arrived <- struct{}{}:
			default:
			}
		}
	})
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		// Only ever called after the local description is set, when the
		// remote participant is known. A lost candidate shows as missing
		// media; nothing is logged here, since pion may still call this
		// while the test ends.
		_, _, _ = cc.rpc("call.signal", map[string]any{"room": room, "to": p.peer(), "candidate": c.ToJSON()})
	})
	return p
}

// iceServersOf reads the ice_servers of a call.join result.
func iceServersOf(join map[string]any) []webrtc.ICEServer {
	var servers []webrtc.ICEServer
	for _, s := range join["ice_servers"].([]any) {
		m := s.(map[string]any)
		var is webrtc.ICEServer
		for _, u := range m["urls"].([]any) {
			is.URLs = append(is.URLs, u.(string))
		}
		is.Username, _ = m["username"].(string)
		is.Credential, _ = m["credential"].(string)
		servers = append(servers, is)
	}
	return servers
}

func (p *mediaPeer) peer() string { p.remoteMu.Lock(); defer p.remoteMu.Unlock(); return p.remote }

func (p *mediaPeer) setPeer(id string) { p.remoteMu.Lock(); p.remote = id; p.remoteMu.Unlock() }

// offer makes and sends the first offer (the impolite side's job).
func (p *mediaPeer) offer() error {
	if _, err := p.pc.AddTrack(p.track); err != nil {
		return err
	}
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	if err := p.pc.SetLocalDescription(offer); err != nil {
		return err
	}
	return p.send(map[string]any{"room": p.room, "to": p.peer(), "description": offer})
}

func (p *mediaPeer) send(data map[string]any) error {
	_, perr, err := p.cc.rpc("call.signal", data)
	if err == nil && perr != nil {
		err = fmt.Errorf("call.signal: %v", perr)
	}
	return err
}

// handleSignals applies signal pushes until ctx ends: it answers an offer
// (adding its own track to the offered transceiver) and adds candidates,
// holding those that arrive before the remote description.
func (p *mediaPeer) handleSignals(ctx context.Context) error {
	for {
		var m map[string]any
		select {
		case <-ctx.Done():
			return nil
		case m = <-p.cc.pushes:
		}
		if m == nil {
			return nil
		}
		if m["push"] != "call" || m["event"] != "signal" {
			continue
		}
		p.setPeer(m["from"].(string))
		if d, ok := m["description"]; ok {
			var desc webrtc.SessionDescription
			b, _ := json.Marshal(d)
			if err := json.Unmarshal(b, &desc); err != nil {
				return err
			}
			if err := p.pc.SetRemoteDescription(desc); err != nil {
				return fmt.Errorf("%s: set remote %s: %w", p.name, desc.Type, err)
			}
			for _, c := range p.pending {
				if err := p.pc.AddICECandidate(c); err != nil {
					return err
				}
			}
			p.pending = nil
			if desc.Type == webrtc.SDPTypeOffer {
				if _, err := p.pc.AddTrack(p.track); err != nil {
					return err
				}
				answer, err := p.pc.CreateAnswer(nil)
				if err != nil {
					return err
				}
				if err := p.pc.SetLocalDescription(answer); err != nil {
					return err
				}
				if err := p.send(map[string]any{"room": p.room, "to": p.peer(), "description": answer}); err != nil {
					return err
				}
			}
		}
		if c, ok := m["candidate"]; ok {
			var ci webrtc.ICECandidateInit
			b, _ := json.Marshal(c)
			if err := json.Unmarshal(b, &ci); err != nil {
				return err
			}
			if p.pc.RemoteDescription() == nil {
				p.pending = append(p.pending, ci)
			} else if err := p.pc.AddICECandidate(ci); err != nil {
				return err
			}
		}
	}
}

// sendVideo writes synthetic VP8 RTP packets until ctx ends.
func (p *mediaPeer) sendVideo(ctx context.Context) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	// A VP8 payload descriptor (start of partition 0) and a few bytes of frame.
	payload := []byte{0x10, 0x00, 0x9d, 0x01, 0x2a, 0x01, 0x02, 0x03, 0x04}
	for seq := uint16(0); ; seq++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: seq, Timestamp: uint32(seq) * 3000}, Payload: payload}
		_ = p.track.WriteRTP(pkt) // fails only when closed; unbound tracks drop packets
	}
}

// exchangeVideo runs a's and b's signaling and synthetic video, b offering
// to a (b's peer must be set), until each received want RTP packets; it
// fails the test when that takes 30 s. The media flows on until stop, which
// ends it and closes both peer connections; the test's cleanup runs stop
// too (once in all).
func exchangeVideo(t *testing.T, a, b *mediaPeer, want int64) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	var wg sync.WaitGroup
	stop = sync.OnceFunc(func() {
		cancel()
		wg.Wait()
		for _, p := range []*mediaPeer{a, b} {
			if err := p.pc.Close(); err != nil {
				t.Errorf("close %s: %v", p.name, err)
			}
		}
	})
	t.Cleanup(stop)
	for _, p := range []*mediaPeer{a, b} {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := p.handleSignals(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("%s: %v", p.name, err)
			}
		}()
		go func() { defer wg.Done(); p.sendVideo(ctx) }()
	}
	if err := b.offer(); err != nil {
		t.Fatal(err)
	}
	for a.received.Load() < want || b.received.Load() < want {
		select {
		case <-ctx.Done():
			t.Fatalf("RTP packets received: %s %d, %s %d, want %d each (ICE: %s %s, %s %s)", a.name, a.received.Load(),
				b.name, b.received.Load(), want, a.name, a.pc.ICEConnectionState(), b.name, b.pc.ICEConnectionState())
		case <-a.arrived: // each peer signals every packet it counts
		case <-b.arrived:
		}
	}
	return stop
}

// selectedPair returns the candidate pair the peer's media flows on.
func (p *mediaPeer) selectedPair() (*webrtc.ICECandidatePair, error) {
	senders := p.pc.GetSenders()
	if len(senders) == 0 || senders[0].Transport() == nil {
		return nil, fmt.Errorf("%s: no sender transport", p.name)
	}
	return senders[0].Transport().ICETransport().GetSelectedCandidatePair()
}

// TestCallMediaFlows: two pion peers, each with its own Sori connection, join
// a room's call, negotiate through the server (the newcomer offers, trickle
// ICE) and exchange video RTP both ways; once over loopback host candidates,
// once forced to relay through the embedded TURN server.
func TestCallMediaFlows(t *testing.T) {
	if testing.Short() {
		t.Skip("WebRTC end-to-end")
	}
	for _, relayOnly := range []bool{false, true} {
		t.Run(map[bool]string{false: "direct", true: "relay"}[relayOnly], func(t *testing.T) {
			ts := startServer(t, func(c *config.Config) { c.TURNAllowPeers = []string{"127.0.0.1"} })
			room, ccs := callRoom(t, ts, "alice", "bob")
			ra := ccs[0].must("call.join", map[string]any{"room": room})
			rb := ccs[1].must("call.join", map[string]any{"room": room})
			if participantsOf(rb)[0]["polite"] != false {
				t.Fatalf("bob joined last but is polite: %v", rb)
			}

			alice := newMediaPeer(t, "alice", ccs[0], room, ra, relayOnly)
			bob := newMediaPeer(t, "bob", ccs[1], room, rb, relayOnly)
			bob.setPeer(ra["participant"].(string))
			exchangeVideo(t, alice, bob, 100) // the media flows until the test ends
			for _, p := range []*mediaPeer{alice, bob} {
				pair, err := p.selectedPair()
				if err != nil || pair == nil {
					t.Fatalf("%s: no selected pair: %v", p.name, err)
				}
				isRelay := pair.Local.Typ == webrtc.ICECandidateTypeRelay && pair.Remote.Typ == webrtc.ICECandidateTypeRelay
				if relayOnly && !isRelay {
					t.Fatalf("%s: selected pair %s, want relay on both ends", p.name, pair)
				}
				if !relayOnly && pair.Local.Typ != webrtc.ICECandidateTypeHost {
					t.Fatalf("%s: selected pair %s, want host candidates on loopback", p.name, pair)
				}
			}
			// The TURN server reports to /metrics: each relay-only peer
			// holds at least one allocation while its media flows.
			if n := scrapeGauge(t, ts, "sori_turn_allocations"); relayOnly && n < 2 {
				t.Fatalf("sori_turn_allocations %v while relayed media flows, want at least 2", n)
			}
		})
	}
}

// scrapeGauge reads an unlabelled series from the server's /metrics.
func scrapeGauge(t *testing.T, ts *testServer, name string) float64 {
	t.Helper()
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}
