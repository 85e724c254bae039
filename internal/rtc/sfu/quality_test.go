package sfu

import (
	"fmt"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

func TestParseQuality(t *testing.T) {
	for _, c := range []struct {
		in  string
		max int
	}{{"auto", 2}, {"high", 2}, {"mid", 1}, {"low", 0}, {"off", -1}} {
		q, err := ParseQuality(c.in)
		if err != nil || q.String() != c.in || q.maxLayer() != c.max {
			t.Errorf("%q: %v %v, max layer %d, want %d", c.in, q, err, q.maxLayer(), c.max)
		}
	}
	for _, bad := range []string{"", "HIGH", "medium", "0"} {
		if _, err := ParseQuality(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// videoDown returns sub's down track of publisher's camera.
func videoDown(t *testing.T, r *Room, sub, publisher string) *DownTrack {
	t.Helper()
	p := r.Peer(sub)
	p.mu.Lock()
	defer p.mu.Unlock()
	for u, d := range p.downs {
		if u.kind == webrtc.RTPCodecTypeVideo && u.pub.id == publisher {
			return d
		}
	}
	t.Fatalf("%s has no video down track of %s", sub, publisher)
	return nil
}

// TestQualityCapsOneSubscriber: two subscribers with room for every layer
// (REMB 10 Mbit/s) receive one simulcast publisher. sub1 chose "low" for
// the publisher before it published: it receives the low layer only, from
// the low layer's SSRC, while sub2 climbs to the top one. "off" stops
// sub1's video while its audio goes on; "high" brings the top layer back.
func TestQualityCapsOneSubscriber(t *testing.T) {
	s := newTestSFU(t)
	room, err := s.NewRoom(RoomConfig{})
	if err != nil {
		t.Fatal(err)
	}
	sub1 := newTestClient(t, room, "sub1")
	sub1.subscribe()
	sub2 := newTestClient(t, room, "sub2")
	sub2.subscribe()
	sub1.capDownlink(10_000_000)
	sub2.capDownlink(10_000_000)
	sub1.peer.SetQuality("pub", QualityLow)
	if q := sub1.peer.Quality("pub"); q != QualityLow {
		t.Fatalf("quality %v, want low", q)
	}
	pub := newTestClient(t, room, "pub")
	pub.publish(true, 30)

	layers := func(c *testClient) ([maxLayers]int, int, int) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.layers, c.lastLayer, c.audioPkts
	}
	waitFor(t, func() string {
		l1, _, _ := layers(sub1)
		l2, _, _ := layers(sub2)
		return fmt.Sprintf("sub2 on the top layer and 90 low-layer packets at sub1: sub1 %v, sub2 %v", l1, l2)
	}, time.Minute, func() bool {
		l1, _, _ := layers(sub1)
		l2, last2, _ := layers(sub2)
		return l1[0] >= 90 && l2[2] >= 30 && last2 == 2
	}, sub1, sub2)
	if l1, _, _ := layers(sub1); l1[1] != 0 || l1[2] != 0 {
		t.Errorf("sub1 chose low but received layers %v", l1)
	}
	// The forwarded source is the publisher's low encoding.
	d1 := videoDown(t, room, "sub1", "pub")
	d1.mu.Lock()
	cur := d1.fwd.Current()
	d1.mu.Unlock()
	var qSSRC webrtc.SSRC
	for _, tr := range pub.pc.GetTransceivers() {
		if tr.Sender() != nil && tr.Kind() == webrtc.RTPCodecTypeVideo {
			for _, e := range tr.Sender().GetParameters().Encodings {
				if e.RID == "q" {
					qSSRC = e.SSRC
				}
			}
		}
	}
	if l := d1.up.layer(0); cur != 0 || l == nil || l.ssrc != uint32(qSSRC) {
		t.Errorf("sub1 forwards layer %d (layer 0 %+v), want layer 0 from the q encoding's SSRC %d", cur, l, qSSRC)
	}

	// Off: no video after the 50 audio packets that follow the pause (the
	// video sent before it has arrived by then: one socket, in order, and a
	// second for a lagging reader goroutine), while audio flows.
	sub1.peer.SetQuality("pub", QualityOff)
	if d1.target() != -1 {
		t.Fatalf("sub1's video target %d after off, want -1 (paused)", d1.target())
	}
	_, _, a0 := layers(sub1)
	waitFor(t, func() string { return "50 audio packets after off" }, time.Minute, func() bool {
		_, _, a := layers(sub1)
		return a >= a0+50
	}, sub1)
	v0, _, a1 := layers(sub1)
	waitFor(t, func() string { return "50 more audio packets" }, time.Minute, func() bool {
		_, _, a := layers(sub1)
		return a >= a1+50
	}, sub1)
	if v, _, _ := layers(sub1); v != v0 {
		t.Errorf("sub1 turned video off, but it went on: layers %v then %v", v0, v)
	}
	d1.mu.Lock()
	paused := d1.fwd.drops[DropPaused]
	d1.mu.Unlock()
	if paused == 0 {
		t.Error("no packet dropped as paused")
	}
	// sub2 was never touched: still on the top layer.
	if _, last2, _ := layers(sub2); last2 != 2 {
		t.Errorf("sub2 fell to layer %d when sub1 chose", last2)
	}

	// High: video resumes and climbs to the top layer.
	sub1.peer.SetQuality("pub", QualityHigh)
	v1, _, _ := layers(sub1)
	waitFor(t, func() string { l, _, _ := layers(sub1); return fmt.Sprintf("sub1 back on the top layer: %v", l) }, time.Minute, func() bool {
		l, last, _ := layers(sub1)
		return l[2] >= v1[2]+30 && last == 2
	}, sub1)
}
