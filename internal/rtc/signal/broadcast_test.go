package signal

import (
	"context"
	"testing"
)

// TestBroadcastCall: a room admin starts a broadcast; it is on the SFU from
// the first join, hosts join the SFU as publishers and everybody else as
// viewers; viewers see only hosts and hosts see everyone; a non-host cannot
// start one, nor can anyone while a normal call runs; it never returns to
// mesh, has its own limit, and ends with its last participant.
func TestBroadcastCall(t *testing.T) {
	m, ft := &recMedia{}, &fakeTimers{}
	s, err := New(Config{
		Membership: members{"42": {"ann", "bob", "cat", "dan", "eve"}, "7": {"ann", "bob"}},
		MeshLimit:  2, SFULimit: 3, BroadcastLimit: 4, Media: m, AfterFunc: ft.AfterFunc,
		Hosts: func(_ context.Context, user, _ string) (bool, error) { return user == "ann" || user == "eve", nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conns := map[string]*memConn{}
	join := func(user string, room Room, broadcast bool) (JoinResult, error) {
		c := conns[user+string(room)]
		if c == nil {
			c = &memConn{id: "c-" + user + string(room), user: user}
			conns[user+string(room)] = c
		}
		return s.Join(ctx, c, JoinRequest{Room: room, Broadcast: broadcast})
	}

	wantCode(t, joinErr(join("bob", "42", true)), 104) // not a host
	if _, err := join("ann", "7", false); err != nil { // a normal call in room 7
		t.Fatal(err)
	}
	wantCode(t, joinErr(join("bob", "7", true)), 118) // a call runs there

	ann, err := join("ann", "42", true)
	if err != nil || !ann.Broadcast || ann.Role != RoleHost || ann.Mode != ModeSFU || ann.Limit != 4 {
		t.Fatalf("ann: %+v %v, want the host of a broadcast on the SFU, limit 4", ann, err)
	}
	bob, err := join("bob", "42", false) // no flag needed to join one
	if err != nil || !bob.Broadcast || bob.Role != RoleViewer || len(bob.Participants) != 1 || bob.Participants[0].Role != RoleHost {
		t.Fatalf("bob: %+v %v, want a viewer who sees the host", bob, err)
	}
	cat, err := join("cat", "42", false)
	if err != nil || cat.Role != RoleViewer || len(cat.Participants) != 1 {
		t.Fatalf("cat: %+v %v, want a viewer who sees only the host, not bob", cat, err)
	}
	eve, err := join("eve", "42", false)
	if err != nil || eve.Role != RoleHost || len(eve.Participants) != 3 {
		t.Fatalf("eve: %+v %v, want a host who sees everyone", eve, err)
	}
	wantCode(t, joinErr(join("dan", "42", false)), 119) // the broadcast limit
	r := m.rooms[len(m.rooms)-1]
	if r.name != "42" || len(r.viewers) != 2 || r.viewers[0] != bob.Participant || r.viewers[1] != cat.Participant {
		t.Fatalf("viewers on the SFU %v, want bob's and cat's", r.viewers)
	}
	// Pushes: ann heard of bob, cat and eve; bob heard of eve only.
	joinedOf := func(c *memConn) (n int) {
		for _, p := range c.take() {
			if p.Event == EventJoined {
				n++
			}
		}
		return n
	}
	if n := joinedOf(conns["ann42"]); n != 3 {
		t.Errorf("the host got %d joined pushes, want 3", n)
	}
	if n := joinedOf(conns["bob42"]); n != 1 {
		t.Errorf("a viewer got %d joined pushes, want 1 (the other host)", n)
	}
	// Viewers leaving below the mesh limit do not take it back to mesh.
	for _, u := range []string{"bob", "cat", "eve"} {
		if err := s.Leave(conns[u+"42"], LeaveRequest{Room: "42"}); err != nil {
			t.Fatal(err)
		}
	}
	if tm := ft.last(); tm != nil && !tm.stopped {
		t.Fatal("a broadcast scheduled a return to mesh")
	}
	if err := s.Leave(conns["ann42"], LeaveRequest{Room: "42"}); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if !closed {
		t.Fatal("the broadcast's media room outlived its last participant")
	}
	// Without the SFU there are no broadcasts.
	s2 := newService(t, 4)
	wantCode(t, joinErr(s2.Join(ctx, &memConn{id: "x", user: "ann"}, JoinRequest{Room: "42", Broadcast: true})), 101)
}
