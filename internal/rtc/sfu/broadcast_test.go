package sfu

import (
	"fmt"
	"testing"
	"time"
)

// TestBroadcastManyViewers: one host publishes (three simulcast layers and
// Opus) to 31 viewers joined with JoinViewer — written by four goroutines
// (FanOutChunk 8; 12 viewers in chunks of 3 under the race detector) — and every
// viewer receives video and audio. A viewer that publishes anyway is not
// forwarded to anyone (it is left out of the receiving check: a pion
// client receives badly on the transceiver it sends simulcast on).
func TestBroadcastManyViewers(t *testing.T) {
	if testing.Short() {
		t.Skip("41 peer connections")
	}
	viewers, chunk := 31, 8
	if raceOn {
		// 31 viewers under the race detector on a loaded 2-core machine
		// took minutes and once saw a viewer's ICE fail.
		viewers, chunk = 12, 3
	}
	s, err := New(Config{UDPAddr: "127.0.0.1:0", Tick: 100 * time.Millisecond, FanOutChunk: chunk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	room, err := s.NewRoom(RoomConfig{})
	if err != nil {
		t.Fatal(err)
	}
	host := newTestClient(t, room, "host")
	host.publish(true, 20)
	var vs []*testClient
	for i := 0; i < viewers; i++ {
		id := fmt.Sprintf("v%02d", i)
		var peer *Peer
		c := newClient(t, id, func(send func(Signal)) (func(Signal) error, error) {
			p, err := room.JoinViewer(id, send)
			if err != nil {
				return nil, err
			}
			peer = p
			return p.Signal, nil
		})
		c.peer = peer
		if i == 0 {
			c.publish(true, 5) // a viewer that sends anyway
		} else {
			c.subscribe()
		}
		vs = append(vs, c)
	}
	received := func(c *testClient) (video, audio int) {
		l, _, _, a := c.snapshot()
		return l[0] + l[1] + l[2], a
	}
	start := time.Now()
	for _, c := range vs[1:] {
		waitFor(t, func() string {
			v, a := received(c)
			return fmt.Sprintf("viewer %s to receive video and audio (has %d video, %d audio packets; %s, %s; room %+v)", c.id, v, a, c.pc.ConnectionState(), c.pc.SignalingState(), room.Stats())
		}, 3*time.Minute, func() bool {
			v, a := received(c)
			return v >= 10 && a >= 10
		}, c)
	}
	if n := room.Tracks(); n != 2 {
		t.Errorf("%d tracks published, want the host's 2 (the viewer's are not taken)", n)
	}
	if v, a := received(host); v != 0 || a != 0 {
		t.Errorf("the host received %d video and %d audio packets from a viewer", v, a)
	}
	t.Logf("%d viewers receiving after %v; room %+v", viewers-1, time.Since(start).Round(time.Millisecond), room.Stats())
}
