package sfu

import (
	"fmt"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// TestScreenShareKeepsPriority: one participant publishes a camera, another
// a screen share (a track whose id says "screen"), both simulcast; the
// subscriber's budget (its REMB, 800 kbit/s) fits one track's middle
// layer and the other's low one. The screen share gets the middle layer
// and keeps it. (By track id alone the camera, "cam/camera", would come
// first and take the budget, leaving the screen on its low layer.)
func TestScreenShareKeepsPriority(t *testing.T) {
	s := newTestSFU(t)
	room, err := s.NewRoom(RoomConfig{})
	if err != nil {
		t.Fatal(err)
	}
	sub := newTestClient(t, room, "sub")
	sub.subscribe()
	sub.capDownlink(800_000)
	cam := newTestClient(t, room, "cam")
	cam.publish(true, 30)
	pres := newTestClient(t, room, "pres")
	pres.videoID = "screen"
	pres.shape = [maxLayers]struct{ packets, size int }{{1, 300}, {2, 1000}, {4, 1000}} // ~72, 480, 960 kbit/s
	pres.publish(true, 40)

	downs := func() (camD, screenD *DownTrack) {
		p := room.Peer("sub")
		p.mu.Lock()
		defer p.mu.Unlock()
		for u, d := range p.downs {
			if u.kind == webrtc.RTPCodecTypeVideo {
				if u.screen {
					screenD = d
				} else {
					camD = d
				}
			}
		}
		return camD, screenD
	}
	// Settle: the subscriber climbs one layer at a time.
	waitFor(t, func() string {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		return fmt.Sprintf("screen-share packets of the middle layer (screen layers %v, camera layers %v, estimate %d)",
			sub.screenLayers, sub.layers, sub.peer.Estimate())
	}, time.Minute, func() bool {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		return sub.screenLayers[1] >= 30
	}, sub)
	// Then over the next 150 screen-share packets (several seconds), the
	// screen stays on the middle layer.
	sub.mu.Lock()
	s0, c0 := sub.screenLayers, sub.layers
	sub.mu.Unlock()
	var ds, dc [maxLayers]int
	delta := func() {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		for i := range ds {
			ds[i], dc[i] = sub.screenLayers[i]-s0[i], sub.layers[i]-c0[i]
		}
	}
	waitFor(t, func() string { delta(); return fmt.Sprintf("150 screen-share packets (got %v)", ds) }, time.Minute, func() bool {
		delta()
		return ds[0]+ds[1]+ds[2] >= 150
	}, sub)
	// (On a loaded machine the publishers send fewer frames, so more fits
	// and the camera may climb too; the screen must not fall below.)
	if low := float64(ds[0]) / float64(ds[0]+ds[1]+ds[2]); low > 0.1 {
		t.Errorf("%.0f%% of the screen share's packets on the low layer (%v; camera %v), want <= 10%%", 100*low, ds, dc)
	}
	camD, screenD := downs()
	if camD == nil || screenD == nil {
		t.Fatal("the subscriber lacks the camera or the screen share")
	}
	t.Logf("over the window: screen layers %v, camera layers %v; targets now screen %d, camera %d", ds, dc, screenD.target(), camD.target())
}
