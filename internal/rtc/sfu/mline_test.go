package sfu

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

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
	sub := newTestClient(t, room, "sub")
	type key struct{ from, kind string }
	type arrival struct {
		mid     string
		ssrc    uint32
		packets int
	}
	var mu sync.Mutex
	got := map[key]*arrival{}
	notify := make(chan struct{}, 1)
	sub.pc.OnTrack(func(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		a := &arrival{ssrc: uint32(tr.SSRC())}
		for _, x := range sub.pc.GetTransceivers() {
			if x.Receiver() == recv {
				a.mid = x.Mid()
			}
		}
		mu.Lock()
		got[key{tr.StreamID(), tr.Kind().String()}] = a
		mu.Unlock()
		go func() {
			for {
				if _, _, err := tr.ReadRTP(); err != nil {
					return
				}
				mu.Lock()
				a.packets++
				mu.Unlock()
				select {
				case notify <- struct{}{}:
				default:
				}
			}
		}()
	})
	sub.subscribe()
	subPeer := room.Peer("sub")

	// settled: the SFU's side of the subscriber's connection is stable and
	// sends on none of its m-lines (the round that took the last
	// publisher's tracks off is complete).
	settled := func() bool {
		subPeer.mu.Lock()
		defer subPeer.mu.Unlock()
		if subPeer.pc.SignalingState() != webrtc.SignalingStateStable {
			return false
		}
		for _, st := range parseDirections(subPeer.pc.CurrentLocalDescription()) {
			if st.sends() {
				return false
			}
		}
		return true
	}
	// mlines: the m-lines of the SFU's current description for the
	// subscriber, and for the video one its RTX group (a=ssrc-group:FID).
	mlines := func() (mids []string, fid string) {
		var desc sdp.SessionDescription
		if err := desc.UnmarshalString(sub.pc.CurrentRemoteDescription().SDP); err != nil {
			t.Fatal(err)
		}
		for _, m := range desc.MediaDescriptions {
			if m.MediaName.Media == "application" {
				continue
			}
			mid, _ := m.Attribute("mid")
			mids = append(mids, mid)
			if g, ok := m.Attribute("ssrc-group"); ok && m.MediaName.Media == "video" && strings.HasPrefix(g, "FID ") {
				fid = g
			}
		}
		sort.Strings(mids)
		return mids, fid
	}

	first := map[string]string{} // kind → mid of the first publisher's track
	var lastVideoSSRC uint32
	var lastFID string
	cycles := 20
	if testing.Short() {
		cycles = 5
	}
	for i := 1; i <= cycles; i++ {
		id := fmt.Sprintf("p%d", i)
		ok := t.Run(id, func(t *testing.T) {
			pub := newTestClient(t, room, id) // closed when this subtest ends
			pub.publish(true, 10)
			deadline := time.NewTimer(60 * time.Second)
			defer deadline.Stop()
			for {
				mu.Lock()
				v, a := got[key{id, "video"}], got[key{id, "audio"}]
				done := v != nil && a != nil && v.packets >= 10 && a.packets >= 5
				mu.Unlock()
				if done {
					break
				}
				select {
				case <-notify:
				case <-deadline.C:
					t.Fatalf("%s's tracks did not reach the subscriber: video %+v audio %+v; room %+v", id, v, a, room.Stats())
				}
			}
			mids, fid := mlines()
			mu.Lock()
			v, a := *got[key{id, "video"}], *got[key{id, "audio"}]
			mu.Unlock()
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
		waitFor(t, func() string { return fmt.Sprintf("the subscriber's renegotiation after %s left", id) }, 30*time.Second, settled, sub)
	}
	if n := room.Stats().Reused; n != uint64(2*(cycles-1)) {
		t.Errorf("room reused %d m-lines, want %d (audio and video of publishers 2…%d)", n, 2*(cycles-1), cycles)
	}
}
