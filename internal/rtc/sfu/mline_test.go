package sfu

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

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
