package signal

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"
)

// recMedia is a Media that records what signaling asks of the SFU, for the
// mechanism's unit tests; internal/server tests the real SFU behind it.
type recMedia struct {
	mu    sync.Mutex
	rooms []*recRoom
}

type recRoom struct {
	name      Room
	speakers  func([]Speaker)
	mu        sync.Mutex
	sends     map[string]func(description, candidate json.RawMessage, restart bool)
	signals   []string // "participant:description"
	left      []string
	viewers   []string // joined with JoinViewer
	qualities []string // "subscriber>publisher:layer"
	restarts  []string // participants that asked for an ICE restart
	closed    bool
}

func (r *recRoom) RestartICE(p string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.restarts = append(r.restarts, p)
	return nil
}

func (m *recMedia) NewRoom(room Room, speakers func([]Speaker)) (MediaRoom, error) {
	r := &recRoom{name: room, speakers: speakers, sends: map[string]func(json.RawMessage, json.RawMessage, bool){}}
	m.mu.Lock()
	m.rooms = append(m.rooms, r)
	m.mu.Unlock()
	return r, nil
}

func (r *recRoom) Join(p string, send func(description, candidate json.RawMessage, restart bool)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sends[p] = send
	return nil
}

func (r *recRoom) JoinViewer(p string, send func(description, candidate json.RawMessage, restart bool)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sends[p] = send
	r.viewers = append(r.viewers, p)
	return nil
}

func (r *recRoom) Signal(p string, description, _ json.RawMessage) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.signals = append(r.signals, p+":"+string(description))
	return nil
}

func (r *recRoom) Leave(p string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.sends, p)
	r.left = append(r.left, p)
}

func (r *recRoom) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
}

// fakeTimers is an AfterFunc whose timers the test fires by hand.
type fakeTimers struct {
	mu     sync.Mutex
	timers []*fakeTimer
}

type fakeTimer struct {
	d       time.Duration
	f       func()
	stopped bool
}

func (t *fakeTimer) Stop() bool { was := !t.stopped; t.stopped = true; return was }

func (ft *fakeTimers) AfterFunc(d time.Duration, f func()) Timer {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	t := &fakeTimer{d: d, f: f}
	ft.timers = append(ft.timers, t)
	return t
}

func (ft *fakeTimers) last() *fakeTimer {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if len(ft.timers) == 0 {
		return nil
	}
	return ft.timers[len(ft.timers)-1]
}

func newSFUService(t *testing.T, meshLimit, sfuLimit int) (*Service, *recMedia, *fakeTimers) {
	t.Helper()
	m, ft := &recMedia{}, &fakeTimers{}
	s, err := New(Config{
		Membership: members{"42": {"ann", "bob", "cat", "dan", "eve"}},
		MeshLimit:  meshLimit, SFULimit: sfuLimit, Media: m, AfterFunc: ft.AfterFunc,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, m, ft
}

func modes(ps []Push) []Mode {
	var out []Mode
	for _, p := range ps {
		if p.Event == EventMode {
			out = append(out, p.Mode)
		}
	}
	return out
}

func TestCallMovesToSFUAndBack(t *testing.T) {
	s, m, ft := newSFUService(t, 3, 4)
	ctx := context.Background()
	conns := map[string]*memConn{}
	ids := map[string]string{}
	join := func(user string) (JoinResult, error) {
		c := conns[user]
		if c == nil {
			c = &memConn{id: "c-" + user, user: user}
			conns[user] = c
		}
		res, err := s.Join(ctx, c, JoinRequest{Room: "42"})
		if err == nil {
			ids[user] = res.Participant
		}
		return res, err
	}
	for _, u := range []string{"ann", "bob", "cat"} {
		if res, err := join(u); err != nil || res.Mode != ModeMesh || res.Limit != 3 {
			t.Fatalf("%s: %+v %v, want a mesh join", u, res, err)
		}
	}
	wantCode(t, s.Signal(conns["ann"], SignalRequest{Room: "42", To: SFUPeer, Description: json.RawMessage(`{"type":"offer","sdp":"x"}`)}), 117)
	for _, c := range conns {
		c.take()
	}

	// The fourth join moves the call: the others are told first, the
	// joiner learns it from its result, and everyone is in the SFU room.
	res, err := join("dan")
	if err != nil || res.Mode != ModeSFU || res.Limit != 4 || len(res.Participants) != 3 {
		t.Fatalf("dan: %+v %v, want an sfu join with three others", res, err)
	}
	for _, u := range []string{"ann", "bob", "cat"} {
		if got := modes(conns[u].take()); len(got) != 1 || got[0] != ModeSFU {
			t.Fatalf("%s got mode pushes %v, want [sfu]", u, got)
		}
	}
	if len(m.rooms) != 1 || len(m.rooms[0].sends) != 4 {
		t.Fatalf("SFU rooms %d, participants %d; want 1 room with 4", len(m.rooms), len(m.rooms[0].sends))
	}
	mr := m.rooms[0]

	// Signals go both ways through "sfu".
	offer := json.RawMessage(`{"type":"offer","sdp":"v=0"}`)
	if err := s.Signal(conns["dan"], SignalRequest{Room: "42", To: SFUPeer, Description: offer}); err != nil {
		t.Fatal(err)
	}
	if len(mr.signals) != 1 || mr.signals[0] != ids["dan"]+":"+string(offer) {
		t.Fatalf("SFU got %v", mr.signals)
	}
	mr.sends[ids["dan"]](json.RawMessage(`{"type":"answer","sdp":"v=0"}`), nil, false)
	if p := conns["dan"].take(); len(p) != 1 || p[0].Event != EventSignal || p[0].From != SFUPeer || p[0].Description == nil {
		t.Fatalf("dan's pushes %+v, want a signal from sfu", p)
	}
	danSend := mr.sends[ids["dan"]]
	// ICE restart: a bare restart signal to "sfu" asks the SFU for one,
	// and the SFU's restart offer carries the flag to the client.
	if err := s.Signal(conns["dan"], SignalRequest{Room: "42", To: SFUPeer, Restart: true}); err != nil {
		t.Fatal(err)
	}
	if len(mr.restarts) != 1 || mr.restarts[0] != ids["dan"] || len(mr.signals) != 1 {
		t.Fatalf("SFU restarts %v, signals %v; want one restart for dan and no signal", mr.restarts, mr.signals)
	}
	danSend(offer, nil, true)
	if p := conns["dan"].take(); len(p) != 1 || p[0].From != SFUPeer || p[0].Description == nil || !p[0].Restart {
		t.Fatalf("dan's pushes %+v, want a restart offer from sfu", p)
	}
	// Participants do not signal each other in SFU mode.
	wantCode(t, s.Signal(conns["dan"], SignalRequest{Room: "42", To: ids["ann"], Description: offer}), 117)
	if p := conns["ann"].take(); len(p) != 0 {
		t.Fatalf("a participant signal reached ann in SFU mode: %+v", p)
	}

	// The room limit of the SFU holds.
	_, err = join("eve")
	wantCode(t, err, 119)

	// Speakers reach everyone.
	mr.speakers([]Speaker{{ID: ids["bob"], Level: 0.9}})
	for _, u := range []string{"ann", "bob", "cat", "dan"} {
		p := conns[u].take()
		if len(p) != 1 || p[0].Event != EventSpeakers || p[0].Speakers == nil || (*p[0].Speakers)[0].ID != ids["bob"] {
			t.Fatalf("%s's pushes %+v, want speakers with bob first", u, p)
		}
	}

	// Down to 3 (> mesh limit - 1): stays on the SFU, no return scheduled.
	if err := s.Leave(conns["dan"], LeaveRequest{Room: "42"}); err != nil {
		t.Fatal(err)
	}
	if ft.last() != nil {
		t.Fatal("return to mesh scheduled with 3 participants left")
	}
	if len(mr.left) != 1 || mr.left[0] != ids["dan"] {
		t.Fatalf("SFU saw leaves %v", mr.left)
	}
	// A late signal from the SFU for dan is dropped.
	conns["dan"].take()
	danSend(nil, json.RawMessage(`{"candidate":"x"}`), false)
	if p := conns["dan"].take(); len(p) != 0 {
		t.Fatalf("dan got %+v after leaving", p)
	}
	// Down to 2: a return is scheduled; a join before it fires cancels it.
	if err := s.Leave(conns["cat"], LeaveRequest{Room: "42"}); err != nil {
		t.Fatal(err)
	}
	first := ft.last()
	if first == nil || first.d != DefaultMeshReturn {
		t.Fatalf("return timer %+v, want one of %v", first, DefaultMeshReturn)
	}
	if res, err := join("cat"); err != nil || res.Mode != ModeSFU {
		t.Fatalf("cat rejoining: %+v %v, want sfu (the return is pending)", res, err)
	}
	if !first.stopped {
		t.Fatal("the join did not cancel the return to mesh")
	}
	first.f() // a stale timer that fired anyway changes nothing
	if got := modes(conns["ann"].take()); len(got) != 0 {
		t.Fatalf("stale return pushed modes %v", got)
	}
	if err := s.Leave(conns["cat"], LeaveRequest{Room: "42"}); err != nil {
		t.Fatal(err)
	}
	second := ft.last()
	if second == first || second == nil {
		t.Fatal("no new return scheduled")
	}
	second.f()
	for _, u := range []string{"ann", "bob"} {
		if got := modes(conns[u].take()); len(got) != 1 || got[0] != ModeMesh {
			t.Fatalf("%s got mode pushes %v, want [mesh]", u, got)
		}
	}
	if !mr.closed {
		t.Fatal("the SFU room was not closed on the return to mesh")
	}
	if res, err := join("cat"); err != nil || res.Mode != ModeMesh {
		t.Fatalf("join after the return: %+v %v, want mesh", res, err)
	}
}

func TestSFURoomClosesWhenEmpty(t *testing.T) {
	s, m, _ := newSFUService(t, 2, 0)
	ctx := context.Background()
	var cs []*memConn
	for _, u := range []string{"ann", "bob", "cat"} {
		c := &memConn{id: "c-" + u, user: u}
		cs = append(cs, c)
		if _, err := s.Join(ctx, c, JoinRequest{Room: "42"}); err != nil {
			t.Fatal(err)
		}
	}
	if len(m.rooms) != 1 {
		t.Fatalf("%d SFU rooms, want 1", len(m.rooms))
	}
	for _, c := range cs {
		s.Disconnected(c)
	}
	if !m.rooms[0].closed {
		t.Fatal("SFU room left open after everyone left")
	}
	s.mu.Lock()
	n := len(s.rooms)
	s.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d rooms left", n)
	}
}
