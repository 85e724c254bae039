package sfu

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// TestForwardedTracksGetMLinesOfTheirOwn: three pion participants each
// publish a simulcast camera and a microphone on sendrecv transceivers (as
// a browser's addTrack makes them), one after another. Every one receives
// the other two's audio and video, each on an m-line the SFU added: the SFU
// never sends on an m-line the client created. Both ways the SFU used to
// put another participant's track on a client's own m-line happen here: b
// joins after a published (the SFU adds a's tracks to b's connection before
// b's first offer, and pion matched them to b's new m-lines), and c
// publishes after a and b offered (pion's AddTrack reused their camera and
// microphone transceivers). On a simulcast camera's m-line a pion client
// fires no OnTrack, so a's video never reached b.
func TestForwardedTracksGetMLinesOfTheirOwn(t *testing.T) {
	s := newTestSFU(t)
	room, err := s.NewRoom(RoomConfig{})
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ at, from, kind string }
	var mu sync.Mutex
	packets := map[key]int{}
	notify := make(chan struct{}, 1)
	ids := []string{"a", "b", "c"}
	clients := map[string]*testClient{}
	for _, id := range ids {
		c := newTestClient(t, room, id)
		c.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			k := key{id, tr.StreamID(), tr.Kind().String()}
			go func() {
				for {
					if _, _, err := tr.ReadRTP(); err != nil {
						return
					}
					mu.Lock()
					packets[k]++
					mu.Unlock()
					select {
					case notify <- struct{}{}:
					default:
					}
				}
			}()
		})
		clients[id] = c
		c.publish(true, 10)
	}

	// Every participant gets 30 packets of each track of the other two.
	missing := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, at := range ids {
			for _, from := range ids {
				for _, kind := range []string{"audio", "video"} {
					if n := packets[key{at, from, kind}]; at != from && n < 30 {
						out = append(out, fmt.Sprintf("%s from %s: %s %d packets", at, from, kind, n))
					}
				}
			}
		}
		return out
	}
	deadline := time.NewTimer(90 * time.Second)
	defer deadline.Stop()
	for len(missing()) > 0 {
		select {
		case <-notify:
		case <-deadline.C:
			t.Fatalf("not every track arrived: %s; room %+v", strings.Join(missing(), "; "), room.Stats())
		}
	}

	for _, id := range ids {
		c := clients[id]
		// The m-lines the client created: those of its own senders.
		own := map[string]bool{}
		var sfuMids []string
		done := make(chan struct{})
		c.do <- func() { // on the client's loop: no negotiation under way
			defer close(done)
			for _, tr := range c.pc.GetTransceivers() {
				if s := tr.Sender(); s != nil && s.Track() != nil {
					own[tr.Mid()] = true
				}
			}
			parsed, err := c.pc.RemoteDescription().Unmarshal()
			if err != nil {
				t.Error(err)
				return
			}
			for _, m := range parsed.MediaDescriptions {
				mid, _ := m.Attribute("mid")
				_, sends := m.Attribute("msid")
				dir := "sendrecv"
				for _, d := range []string{"sendonly", "recvonly", "inactive"} {
					if _, ok := m.Attribute(d); ok {
						dir = d
					}
				}
				if own[mid] {
					if dir != "recvonly" || sends {
						t.Errorf("%s: the SFU's description has %s on the client's own m-line %s (msid %v): it sends there", id, dir, mid, sends)
					}
				} else if m.MediaName.Media != "application" {
					sfuMids = append(sfuMids, mid)
				}
			}
		}
		<-done
		sort.Strings(sfuMids)
		// Two tracks from each of the other two, each on an m-line of its
		// own that the SFU named.
		if len(sfuMids) != 4 {
			t.Errorf("%s: m-lines added by the SFU %v, want 4 (audio and video of two participants)", id, sfuMids)
		}
		for _, mid := range sfuMids {
			if !strings.HasPrefix(mid, "s") {
				t.Errorf("%s: the SFU's m-line %q is not named by the SFU", id, mid)
			}
		}
		// And on the server: no down track on a client's m-line.
		p := room.Peer(id)
		p.mu.Lock()
		for _, tr := range p.pc.GetTransceivers() {
			if p.clientMids[tr.Mid()] && tr.Sender() != nil {
				t.Errorf("%s: the SFU sends on the client's m-line %s", id, tr.Mid())
			}
		}
		p.mu.Unlock()
	}
}

// mlineWatch follows what a pion subscriber receives from the SFU, for the
// m-line reuse tests: each track as it arrives (in order), and the m-lines
// of the SFU's descriptions.
type mlineWatch struct {
	t    *testing.T
	sub  *testClient
	peer *Peer // the SFU's side of sub's connection

	mu       sync.Mutex
	arrivals []*arrival
	notify   chan struct{}
}

// arrival is one track the subscriber got: OnTrack's names, SSRC and the
// mid of its m-line, and the packets read since.
type arrival struct {
	from, id, kind, mid string
	ssrc                uint32
	packets             int
}

// watchMLines joins a subscriber "sub" to room (it publishes nothing) and
// records what it receives.
func watchMLines(t *testing.T, room *Room) *mlineWatch {
	w := &mlineWatch{t: t, sub: newTestClient(t, room, "sub"), notify: make(chan struct{}, 1)}
	w.sub.pc.OnTrack(func(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		a := &arrival{from: tr.StreamID(), id: tr.ID(), kind: tr.Kind().String(), ssrc: uint32(tr.SSRC())}
		for _, x := range w.sub.pc.GetTransceivers() {
			if x.Receiver() == recv {
				a.mid = x.Mid()
			}
		}
		w.mu.Lock()
		w.arrivals = append(w.arrivals, a)
		w.mu.Unlock()
		go func() {
			for {
				if _, _, err := tr.ReadRTP(); err != nil {
					return
				}
				w.mu.Lock()
				a.packets++
				w.mu.Unlock()
				select {
				case w.notify <- struct{}{}:
				default:
				}
			}
		}()
	})
	w.sub.subscribe()
	w.peer = room.Peer("sub")
	return w
}

// await waits until a track that match accepts has brought n packets, and
// returns a copy of its arrival.
func (w *mlineWatch) await(what string, n int, match func(*arrival) bool) arrival {
	w.t.Helper()
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		var got *arrival
		for _, a := range w.arrivals {
			if match(a) {
				got = a
			}
		}
		if got != nil && got.packets >= n {
			a := *got
			w.mu.Unlock()
			return a
		}
		w.mu.Unlock()
		select {
		case <-w.notify:
		case <-deadline.C:
			w.t.Fatalf("%s did not reach the subscriber (%d packets wanted; last match %+v)", what, n, got)
		}
	}
}

// settle waits until the SFU's side of the subscriber's connection is
// stable and sends on none of its m-lines: the round that took the last
// tracks off is complete.
func (w *mlineWatch) settle(after string) {
	w.t.Helper()
	waitFor(w.t, func() string { return "the subscriber's renegotiation after " + after }, 30*time.Second, func() bool {
		w.peer.mu.Lock()
		defer w.peer.mu.Unlock()
		if w.peer.pc.SignalingState() != webrtc.SignalingStateStable {
			return false
		}
		for _, st := range parseDirections(w.peer.pc.CurrentLocalDescription()) {
			if st.sends() {
				return false
			}
		}
		return true
	}, w.sub)
}

// mlines returns the audio and video m-lines of the SFU's current
// description for the subscriber, the video one's RTX group
// (a=ssrc-group:FID, while it sends), and how many of them send.
func (w *mlineWatch) mlines() (mids []string, fid string, sending int) {
	w.t.Helper()
	var desc sdp.SessionDescription
	if err := desc.UnmarshalString(w.sub.pc.CurrentRemoteDescription().SDP); err != nil {
		w.t.Fatal(err)
	}
	for _, m := range desc.MediaDescriptions {
		if m.MediaName.Media == "application" {
			continue
		}
		mid, _ := m.Attribute("mid")
		mids = append(mids, mid)
		_, sendrecv := m.Attribute("sendrecv")
		_, sendonly := m.Attribute("sendonly")
		if sendrecv || sendonly {
			sending++
		}
		if g, ok := m.Attribute("ssrc-group"); ok && m.MediaName.Media == "video" && strings.HasPrefix(g, "FID ") {
			fid = g
		}
	}
	sort.Strings(mids)
	return mids, fid, sending
}

// mlineCycles is how many tracks come and go in the reuse tests.
func mlineCycles() int {
	if testing.Short() {
		return 5
	}
	return 20
}

// TestFreedMLinesAreReused: one subscriber stays while 20 publishers in
// turn join, publish a simulcast camera and a microphone, and leave. The
// SFU reuses the m-lines the last one's tracks were on, so the
// subscriber's SDP keeps the two m-lines of the peak (one audio, one
// video) instead of gaining two per publisher (40 at the end), and every
// publisher's audio and video arrive there: the reused m-line carries the
// new publisher's msid (the client's OnTrack names it) and new SSRCs, with
// RTX declared again.
func TestFreedMLinesAreReused(t *testing.T) {
	s := newTestSFU(t)
	room, err := s.NewRoom(RoomConfig{})
	if err != nil {
		t.Fatal(err)
	}
	w := watchMLines(t, room)
	cycles := mlineCycles()
	first := map[string]string{} // kind → mid of the first publisher's track
	var lastVideoSSRC uint32
	var lastFID string
	for i := 1; i <= cycles; i++ {
		id := fmt.Sprintf("p%d", i)
		ok := t.Run(id, func(t *testing.T) {
			pub := newTestClient(t, room, id) // closed when this subtest ends
			pub.publish(true, 10)
			v := w.await(id+"'s video", 10, func(a *arrival) bool { return a.from == id && a.kind == "video" })
			a := w.await(id+"'s audio", 5, func(a *arrival) bool { return a.from == id && a.kind == "audio" })
			mids, fid, _ := w.mlines()
			if len(mids) > 2 {
				t.Errorf("after %d publishers the subscriber's SDP has %d m-lines %v, want at most 2 (the peak: one audio, one video track)", i, len(mids), mids)
			}
			if i == 1 {
				first["video"], first["audio"] = v.mid, a.mid
			} else {
				if v.mid != first["video"] || a.mid != first["audio"] {
					t.Errorf("%s arrived on m-lines video %q audio %q, want the freed %q and %q", id, v.mid, a.mid, first["video"], first["audio"])
				}
				if v.ssrc == lastVideoSSRC || fid == "" || fid == lastFID {
					t.Errorf("%s's video on the reused m-line: SSRC %d (before %d), RTX group %q (before %q): want new SSRCs with RTX", id, v.ssrc, lastVideoSSRC, fid, lastFID)
				}
			}
			lastVideoSSRC, lastFID = v.ssrc, fid
			room.Leave(id)
		})
		if !ok {
			t.FailNow()
		}
		w.settle(id + " left")
	}
	if n := room.Stats().Reused; n != uint64(2*(cycles-1)) {
		t.Errorf("room reused %d m-lines, want %d (audio and video of publishers 2…%d)", n, 2*(cycles-1), cycles)
	}
	// What the subscriber's pacer kept for the stopped tracks' SSRCs is
	// gone with them (DownTrack.Unbind); the track of the last publisher
	// may still be stopping, so at most its two streams and one RTX alias
	// are left, not one entry per track ever sent.
	room.mu.Lock()
	pacer := room.peers["sub"].pacer
	room.mu.Unlock()
	pacer.mu.Lock()
	writers, aliases := len(pacer.writers), len(pacer.aliases)
	pacer.mu.Unlock()
	pacer.rtcp.mu.Lock()
	routes := len(pacer.rtcp.aliases)
	pacer.rtcp.mu.Unlock()
	if writers > 2 || aliases > 1 || routes > 1 {
		t.Errorf("after %d publishers the subscriber's pacer holds %d writers, %d RTX aliases, %d RTCP routes: want at most 2, 1, 1", cycles, writers, aliases, routes)
	}
}

// presenter is a pion participant for the track-end tests: connected to
// the room with nothing to send at first; offer changes what it sends.
type presenter struct {
	*testClient
	w *mlineWatch
}

func newPresenter(t *testing.T, room *Room, w *mlineWatch) *presenter {
	p := &presenter{testClient: newTestClient(t, room, "pres"), w: w}
	p.subscribe() // connected, sending nothing yet
	return p
}

// presenterRoom is a room with a subscriber watching its m-lines and a
// presenter connected, sending nothing yet.
func presenterRoom(t *testing.T) (*Room, *mlineWatch, *presenter) {
	room, err := newTestSFU(t).NewRoom(RoomConfig{})
	if err != nil {
		t.Fatal(err)
	}
	w := watchMLines(t, room)
	return room, w, newPresenter(t, room, w)
}

// screenTrack is the presenter's screen-share track ("pres/screen" at the
// SFU).
func screenTrack(t *testing.T) *webrtc.TrackLocalStaticRTP {
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "screen", "pres-screen")
	if err != nil {
		t.Fatal(err)
	}
	return track
}

// offer runs change (AddTrack, RemoveTrack) and sends an offer, on the
// client's signaling loop, once the answer to its last offer is applied:
// the loop takes the SFU's signals and these calls in any order, and an
// offer while one is out fails.
func (p *presenter) offer(change func() error) {
	p.t.Helper()
	waitFor(p.t, func() string { return "the answer to pres's last offer" }, 30*time.Second, func() bool {
		return p.pc.SignalingState() == webrtc.SignalingStateStable && p.pc.CurrentRemoteDescription() != nil
	}, p.w.sub)
	errc := make(chan error, 1)
	p.do <- func() {
		if err := change(); err != nil {
			errc <- err
			return
		}
		errc <- p.sendOffer()
	}
	if err := <-errc; err != nil {
		p.t.Fatal(err)
	}
}

// sendKeyframes writes VP8 keyframes (every packet is a place to start)
// to track every 20 ms until stop is called.
func sendKeyframes(track *webrtc.TrackLocalStaticRTP) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for sn := uint16(0); ; sn++ {
			select {
			case <-quit:
				return
			case <-tick.C:
				_ = track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: sn, Timestamp: uint32(sn) * 1800, Marker: true},
					Payload: []byte{0x10, 0x00, 0x9d, 0x01, 0x2a}})
			}
		}
	}()
	return func() { close(quit); <-done }
}

// TestStoppedTracksFreeTheirMLines: a participant shares its screen and
// stops, 20 times, without leaving (a pion client's AddTrack, offer,
// RemoveTrack, offer: what a browser's screen share does). Each stop ends
// the track at the SFU, whose m-line at the subscriber is freed and taken
// by the next share: the subscriber keeps one m-line, and every share
// arrives on it. Before, a stopped track stayed in the room with its
// m-line at every subscriber, and each share added one more.
func TestStoppedTracksFreeTheirMLines(t *testing.T) {
	room, w, pres := presenterRoom(t)
	cycles := mlineCycles()
	var firstMid string
	ssrcs := map[uint32]bool{}
	for i := 1; i <= cycles; i++ {
		track := screenTrack(t)
		var sender *webrtc.RTPSender
		pres.offer(func() (err error) {
			sender, err = pres.pc.AddTrack(track)
			return err
		})
		stop := sendKeyframes(track)
		// This share's track: one from pres on an SSRC not seen before.
		got := w.await(fmt.Sprintf("share %d", i), 10, func(a *arrival) bool { return a.from == "pres" && !ssrcs[a.ssrc] })
		ssrcs[got.ssrc] = true
		if got.id != "pres/screen" {
			t.Errorf("share %d arrived as track %q, want pres/screen", i, got.id)
		}
		mids, _, _ := w.mlines()
		if len(mids) != 1 {
			t.Errorf("share %d: the subscriber's SDP has m-lines %v, want 1 (the peak: one screen track)", i, mids)
		}
		if i == 1 {
			firstMid = got.mid
		} else if got.mid != firstMid {
			t.Errorf("share %d arrived on m-line %q, want the freed %q", i, got.mid, firstMid)
		}
		stop()
		pres.offer(func() error { return pres.pc.RemoveTrack(sender) })
		waitFor(t, func() string { return fmt.Sprintf("share %d to end at the SFU (%d tracks)", i, room.Tracks()) }, 30*time.Second,
			func() bool { return room.Tracks() == 0 }, w.sub)
		w.settle(fmt.Sprintf("share %d stopped", i))
	}
	if n := room.Stats().Reused; n != uint64(cycles-1) {
		t.Errorf("room reused %d m-lines, want %d", n, cycles-1)
	}
}

// TestTrackSentAgainReplacesTheOld: a participant takes its screen track
// off and puts the same track back in one offer (RemoveTrack, AddTrack,
// offer): pion sends it on a new transceiver, with a new SSRC and the same
// track id. The SFU ends the old track and forwards the new one: the room
// holds one track, the subscriber gets the new SSRC's packets and only
// one of its m-lines sends (the old one is freed, not left to a stale
// track that would never send again).
func TestTrackSentAgainReplacesTheOld(t *testing.T) {
	room, w, pres := presenterRoom(t)
	track := screenTrack(t)
	stop := sendKeyframes(track)
	defer stop()
	var sender *webrtc.RTPSender
	pres.offer(func() (err error) {
		sender, err = pres.pc.AddTrack(track)
		return err
	})
	first := w.await("the share", 10, func(a *arrival) bool { return a.from == "pres" })
	pres.offer(func() error {
		if err := pres.pc.RemoveTrack(sender); err != nil {
			return err
		}
		_, err := pres.pc.AddTrack(track)
		return err
	})
	again := w.await("the share sent again", 10, func(a *arrival) bool { return a.from == "pres" && a.ssrc != first.ssrc })
	if again.id != first.id {
		t.Errorf("the share came back as track %q, want %q", again.id, first.id)
	}
	waitFor(t, func() string { return fmt.Sprintf("one track in the room (%d)", room.Tracks()) }, 30*time.Second,
		func() bool { return room.Tracks() == 1 }, w.sub)
	// The subscriber's m-lines: the old one freed (the round that took the
	// old track off is answered), the new one sending.
	waitFor(t, func() string {
		mids, _, n := w.mlines()
		return fmt.Sprintf("one sending m-line at the subscriber (%v, %d sending)", mids, n)
	}, 30*time.Second, func() bool { _, _, n := w.mlines(); return n == 1 }, w.sub)
}
