package signal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/sori-dev/sori/internal/protocol"
)

// memConn is an in-memory Conn that records the pushes it is sent.
type memConn struct {
	id, user string
	mu       sync.Mutex
	frames   []Push
}

func (c *memConn) ID() string   { return c.id }
func (c *memConn) User() string { return c.user }
func (c *memConn) Send(frame []byte) {
	var p Push
	if err := json.Unmarshal(frame, &p); err != nil {
		panic(fmt.Sprintf("push is not JSON: %q", frame))
	}
	c.mu.Lock()
	c.frames = append(c.frames, p)
	c.mu.Unlock()
}

// take returns and forgets the recorded pushes.
func (c *memConn) take() []Push {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.frames
	c.frames = nil
	return out
}

// members is a Membership from a fixed table: room -> users.
type members map[string][]string

func (m members) IsMember(_ context.Context, user, room string) (bool, error) {
	if room == "broken" {
		return false, errors.New("store is down")
	}
	for _, u := range m[room] {
		if u == user {
			return true, nil
		}
	}
	return false, nil
}

func newService(t *testing.T, limit int) *Service {
	t.Helper()
	s, err := New(Config{
		Membership: members{"42": {"ann", "bob", "cat", "dan"}},
		ICEServers: func(user string) []ICEServer {
			return []ICEServer{{URLs: []string{"turn:example.org:3478"}, Username: "1:" + user, Credential: "x"}}
		},
		MeshLimit: limit,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func wantCode(t *testing.T, err error, code int) {
	t.Helper()
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != code {
		t.Fatalf("error %v, want code %d", err, code)
	}
}

func TestJoinAssignsRolesByJoinOrder(t *testing.T) {
	s := newService(t, 4)
	ctx := context.Background()
	ann, bob, cat := &memConn{id: "c1", user: "ann"}, &memConn{id: "c2", user: "bob"}, &memConn{id: "c3", user: "cat"}

	ra, err := s.Join(ctx, ann, JoinRequest{Room: "42", State: &State{Camera: true}})
	if err != nil {
		t.Fatal(err)
	}
	if ra.Mode != ModeMesh || ra.Limit != 4 || len(ra.Participants) != 0 || ra.Participant == "" {
		t.Fatalf("first join: %+v", ra)
	}
	if len(ra.ICEServers) != 1 || ra.ICEServers[0].Username != "1:ann" {
		t.Fatalf("ice servers %+v, want the joiner's credentials", ra.ICEServers)
	}
	rb, err := s.Join(ctx, bob, JoinRequest{Room: "42"})
	if err != nil {
		t.Fatal(err)
	}
	// Bob joined later: he is impolite towards Ann (he offers), she is polite.
	if len(rb.Participants) != 1 || rb.Participants[0] != (Participant{ID: ra.Participant, User: "ann", Polite: false, State: State{Camera: true}}) {
		t.Fatalf("bob's participants %+v", rb.Participants)
	}
	got := ann.take()
	if len(got) != 1 || got[0].Push != "call" || got[0].Event != EventJoined || got[0].Room != "42" ||
		*got[0].Participant != (Participant{ID: rb.Participant, User: "bob", Polite: true}) {
		t.Fatalf("ann's pushes %+v", got)
	}
	rc, err := s.Join(ctx, cat, JoinRequest{Room: "42"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rc.Participants) != 2 || rc.Participants[0].User != "ann" || rc.Participants[1].User != "bob" ||
		rc.Participants[0].Polite || rc.Participants[1].Polite {
		t.Fatalf("cat's participants (join order, cat impolite to both) %+v", rc.Participants)
	}
	if p := bob.take(); len(p) != 1 || p[0].Participant.ID != rc.Participant || !p[0].Participant.Polite {
		t.Fatalf("bob's pushes %+v", p)
	}
}

func TestJoinRefusals(t *testing.T) {
	s := newService(t, 2)
	ctx := context.Background()
	ann, bob, cat := &memConn{id: "c1", user: "ann"}, &memConn{id: "c2", user: "bob"}, &memConn{id: "c3", user: "cat"}

	_, err := s.Join(ctx, &memConn{id: "c9", user: "eve"}, JoinRequest{Room: "42"})
	wantCode(t, err, 104)
	_, err = s.Join(ctx, &memConn{id: "c8"}, JoinRequest{Room: "42"})
	wantCode(t, err, 104)
	_, err = s.Join(ctx, ann, JoinRequest{Room: "no:colons"})
	wantCode(t, err, 101)
	_, err = s.Join(ctx, ann, JoinRequest{Room: "broken"})
	var pe *protocol.Error
	if err == nil || errors.As(err, &pe) {
		t.Fatalf("membership failure: %v, want a plain (internal) error", err)
	}

	if _, err := s.Join(ctx, ann, JoinRequest{Room: "42"}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Join(ctx, ann, JoinRequest{Room: "42"})
	wantCode(t, err, 118)
	if _, err := s.Join(ctx, bob, JoinRequest{Room: "42"}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Join(ctx, cat, JoinRequest{Room: "42"})
	wantCode(t, err, 119)

	// A place frees up when someone leaves.
	if err := s.Leave(bob, LeaveRequest{Room: "42"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Join(ctx, cat, JoinRequest{Room: "42"}); err != nil {
		t.Fatalf("join after a leave: %v", err)
	}
}

func TestSignalIsRelayedToOneParticipant(t *testing.T) {
	s := newService(t, 4)
	ctx := context.Background()
	ann, bob, cat := &memConn{id: "c1", user: "ann"}, &memConn{id: "c2", user: "bob"}, &memConn{id: "c3", user: "cat"}
	ra, _ := s.Join(ctx, ann, JoinRequest{Room: "42"})
	rb, _ := s.Join(ctx, bob, JoinRequest{Room: "42"})
	if _, err := s.Join(ctx, cat, JoinRequest{Room: "42"}); err != nil {
		t.Fatal(err)
	}
	ann.take()
	bob.take()

	offer := json.RawMessage(`{"type":"offer","sdp":"v=0\r\n"}`)
	if err := s.Signal(bob, SignalRequest{Room: "42", To: ra.Participant, Description: offer, Restart: true}); err != nil {
		t.Fatal(err)
	}
	cand := json.RawMessage(`{"candidate":"candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}`)
	if err := s.Signal(bob, SignalRequest{Room: "42", To: ra.Participant, Candidate: cand}); err != nil {
		t.Fatal(err)
	}
	got := ann.take()
	if len(got) != 2 || got[0].Event != EventSignal || got[0].From != rb.Participant || !got[0].Restart ||
		string(got[0].Description) != string(offer) || got[1].Candidate == nil || got[1].Description != nil {
		t.Fatalf("ann got %+v", got)
	}
	if p := cat.take(); len(p) != 0 {
		t.Fatalf("cat overheard %+v", p)
	}

	for name, req := range map[string]SignalRequest{
		"no target":        {Room: "42", Description: offer},
		"empty":            {Room: "42", To: ra.Participant},
		"null candidate":   {Room: "42", To: ra.Participant, Candidate: json.RawMessage(`null`)},
		"bad type":         {Room: "42", To: ra.Participant, Description: json.RawMessage(`{"type":"hello","sdp":"x"}`)},
		"offer no sdp":     {Room: "42", To: ra.Participant, Description: json.RawMessage(`{"type":"offer"}`)},
		"string candidate": {Room: "42", To: ra.Participant, Candidate: json.RawMessage(`"candidate:1"`)},
	} {
		t.Run(name, func(t *testing.T) { wantCode(t, s.Signal(bob, req), 101) })
	}
	wantCode(t, s.Signal(bob, SignalRequest{Room: "42", To: "nobody", Restart: true}), 117)
	wantCode(t, s.Signal(bob, SignalRequest{Room: "42", To: rb.Participant, Restart: true}), 117)
	wantCode(t, s.Signal(&memConn{id: "c7", user: "dan"}, SignalRequest{Room: "42", To: ra.Participant, Restart: true}), 117)
	if p := ann.take(); len(p) != 0 {
		t.Fatalf("refused signals reached ann: %+v", p)
	}
	// A rollback carries no sdp.
	if err := s.Signal(bob, SignalRequest{Room: "42", To: ra.Participant, Description: json.RawMessage(`{"type":"rollback"}`)}); err != nil {
		t.Fatal(err)
	}
}

func TestStateAndLeavePushes(t *testing.T) {
	s := newService(t, 4)
	ctx := context.Background()
	ann, bob := &memConn{id: "c1", user: "ann"}, &memConn{id: "c2", user: "bob"}
	_, _ = s.Join(ctx, ann, JoinRequest{Room: "42"})
	rb, _ := s.Join(ctx, bob, JoinRequest{Room: "42", State: &State{Camera: true}})
	if _, err := s.Join(ctx, bob, JoinRequest{Room: "other"}); err == nil {
		t.Fatal("bob joined a room he is not a member of")
	}
	ann.take()

	yes := true
	st, err := s.SetState(bob, StateRequest{Room: "42", Muted: &yes})
	if err != nil || st != (State{Muted: true, Camera: true}) {
		t.Fatalf("state %+v %v: want camera kept, muted set", st, err)
	}
	if p := ann.take(); len(p) != 1 || p[0].Event != EventState || p[0].Participant.ID != rb.Participant ||
		p[0].Participant.State != st {
		t.Fatalf("ann's pushes %+v", p)
	}
	if p := bob.take(); len(p) != 0 {
		t.Fatalf("bob was told of his own state: %+v", p)
	}

	s.Disconnected(bob)
	if p := ann.take(); len(p) != 1 || p[0].Event != EventLeft || p[0].Reason != ReasonDisconnected || p[0].Participant.ID != rb.Participant {
		t.Fatalf("ann's pushes after bob's disconnect %+v", p)
	}
	wantCode(t, s.Leave(bob, LeaveRequest{Room: "42"}), 117)
	if err := s.Leave(ann, LeaveRequest{Room: "42"}); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	rooms, conns := len(s.rooms), len(s.conns)
	s.mu.Unlock()
	if rooms != 0 || conns != 0 {
		t.Fatalf("%d rooms and %d connections left after everyone left", rooms, conns)
	}
}

func TestMethodsDecodeData(t *testing.T) {
	s := newService(t, 4)
	m := s.Methods()
	ann := &memConn{id: "c1", user: "ann"}
	res, err := m["call.join"](context.Background(), ann, json.RawMessage(`{"room":42}`))
	if err != nil {
		t.Fatal(err)
	}
	if r := res.(JoinResult); r.Room != "42" {
		t.Fatalf("numeric room joined as %q", r.Room)
	}
	for _, data := range []string{``, `[]`, `{"room":4.5}`, `{"room":true}`} {
		_, err := m["call.leave"](context.Background(), ann, json.RawMessage(data))
		wantCode(t, err, 101)
	}
	if _, err := m["call.state"](context.Background(), ann, json.RawMessage(`{"room":"42","screen":true}`)); err != nil {
		t.Fatal(err)
	}
}

func TestJoinReplacesAStaleParticipantOfTheSameUser(t *testing.T) {
	s := newService(t, 2)
	ctx := context.Background()
	ann, bob := &memConn{id: "c1", user: "ann"}, &memConn{id: "c2", user: "bob"}
	ra, err := s.Join(ctx, ann, JoinRequest{Room: "42"})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := s.Join(ctx, bob, JoinRequest{Room: "42"})
	if err != nil {
		t.Fatal(err)
	}
	ann.take()

	// Bob's connection died unnoticed; his new one is refused while the call
	// is full, and Ann's participant cannot be replaced by him.
	bob2 := &memConn{id: "c3", user: "bob"}
	wantCode(t, joinErr(s.Join(ctx, bob2, JoinRequest{Room: "42"})), protocol.ErrCallFull.Code)
	wantCode(t, joinErr(s.Join(ctx, bob2, JoinRequest{Room: "42", Replaces: ra.Participant})), protocol.ErrCallFull.Code)
	wantCode(t, joinErr(s.Join(ctx, bob2, JoinRequest{Room: "42", Replaces: "gone"})), protocol.ErrCallFull.Code)
	if p := ann.take(); len(p) != 0 {
		t.Fatalf("refused joins pushed %+v", p)
	}

	rb2, err := s.Join(ctx, bob2, JoinRequest{Room: "42", Replaces: rb.Participant})
	if err != nil {
		t.Fatal(err)
	}
	if len(rb2.Participants) != 1 || rb2.Participants[0].ID != ra.Participant {
		t.Fatalf("participants after the replace %+v, want Ann only", rb2.Participants)
	}
	got := ann.take()
	if len(got) != 2 || got[0].Event != EventLeft || got[0].Reason != ReasonReplaced || got[0].Participant.ID != rb.Participant ||
		got[1].Event != EventJoined || got[1].Participant.ID != rb2.Participant {
		t.Fatalf("ann's pushes %+v, want left (replaced) then joined", got)
	}
	// The old connection, should it still be alive, hears it is out.
	if p := bob.take(); len(p) != 1 || p[0].Event != EventLeft || p[0].Participant.ID != rb.Participant || p[0].Reason != ReasonReplaced {
		t.Fatalf("the replaced connection's pushes %+v", p)
	}
	// The old connection is no longer in the call.
	wantCode(t, s.Leave(bob, LeaveRequest{Room: "42"}), protocol.ErrNotFound.Code)
}

func TestRemoveUserEndsEveryParticipantOfTheUser(t *testing.T) {
	s := newService(t, 4)
	ctx := context.Background()
	ann, bob, bobTab := &memConn{id: "c1", user: "ann"}, &memConn{id: "c2", user: "bob"}, &memConn{id: "c3", user: "bob"}
	for _, c := range []*memConn{ann, bob, bobTab} {
		if _, err := s.Join(ctx, c, JoinRequest{Room: "42"}); err != nil {
			t.Fatal(err)
		}
	}
	ann.take()
	if n := s.RemoveUser("42", "bob", ReasonKicked); n != 2 {
		t.Fatalf("removed %d participants, want bob's 2", n)
	}
	got := ann.take()
	if len(got) != 2 || got[0].Reason != ReasonKicked || got[1].Reason != ReasonKicked || got[0].Participant.User != "bob" {
		t.Fatalf("ann's pushes %+v", got)
	}
	if n := s.RemoveUser("42", "bob", ReasonKicked); n != 0 {
		t.Fatalf("second removal removed %d", n)
	}
	if n := s.RemoveUser("7", "bob", ReasonKicked); n != 0 {
		t.Fatalf("removal from a room without a call removed %d", n)
	}
	// Ann alone: removing her ends the call.
	s.RemoveUser("42", "ann", ReasonLeftRoom)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.rooms) != 0 || len(s.conns) != 0 {
		t.Fatalf("rooms %v conns %v after everyone was removed", s.rooms, s.conns)
	}
}

// kickDuringCheck answers a membership check with the state from before a
// kick that happens while the check runs: the race RemoveUser must win.
type kickDuringCheck struct {
	s      *Service
	kicked bool
}

func (k *kickDuringCheck) IsMember(_ context.Context, user, _ string) (bool, error) {
	if k.kicked {
		return false, nil
	}
	k.kicked = true
	k.s.RemoveUser("42", user, ReasonKicked)
	return true, nil // stale: the store changed after it was read
}

func TestJoinRechecksMembershipAfterARemoval(t *testing.T) {
	k := &kickDuringCheck{}
	s, err := New(Config{Membership: k})
	if err != nil {
		t.Fatal(err)
	}
	k.s = s
	wantCode(t, joinErr(s.Join(context.Background(), &memConn{id: "c1", user: "eve"}, JoinRequest{Room: "42"})), protocol.ErrPermissionDenied.Code)
	if len(s.rooms) != 0 {
		t.Fatalf("the kicked user got into the call: %v", s.rooms)
	}
}

func joinErr(_ JoinResult, err error) error { return err }
