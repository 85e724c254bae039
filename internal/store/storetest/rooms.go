package storetest

import (
	"sync"
	"testing"

	"github.com/sori-dev/sori/internal/store"
)

func testRooms(t *testing.T, h Harness) {
	s, ctx := open(t, h), ctxT(t)
	alice := mkUser(t, s, "alice")
	general := mkRoom(t, s, "general", store.RoomPublic, alice.ID)
	if general.ID == 0 || general.Epoch == "" || general.LastSeq != 0 || general.CreatedAt.IsZero() {
		t.Fatalf("created room = %+v", general)
	}
	secret := mkRoom(t, s, "secret", store.RoomPrivate, alice.ID)
	if secret.Epoch == general.Epoch {
		t.Fatal("two rooms share an epoch")
	}
	m := ok(s.GetMember(ctx, general.ID, alice.ID)).must(t)
	if m.Role != store.RoleOwner {
		t.Fatalf("creator's membership = %+v, want owner", m)
	}

	if got := ok(s.GetRoom(ctx, general.ID)).must(t); got != general {
		t.Fatalf("GetRoom = %+v, want %+v", got, general)
	}
	if got := ok(s.GetRoomByName(ctx, "GENERAL")).must(t); got != general {
		t.Fatalf("GetRoomByName = %+v", got)
	}
	_, err := s.CreateRoom(ctx, store.Room{Name: "General", Kind: store.RoomPrivate, CreatedBy: alice.ID})
	wantErr(t, err, store.ErrConflict)
	_, err = s.CreateRoom(ctx, store.Room{Name: "dm", Kind: store.RoomDirect, CreatedBy: alice.ID})
	wantErr(t, err, store.ErrInvalid)
	_, err = s.CreateRoom(ctx, store.Room{Name: "x", Kind: "weird", CreatedBy: alice.ID})
	wantErr(t, err, store.ErrInvalid)
	_, err = s.CreateRoom(ctx, store.Room{Name: "orphan", Kind: store.RoomPublic, CreatedBy: 999999})
	wantErr(t, err, store.ErrNotFound)
	if _, err := s.GetRoomByName(ctx, "orphan"); err == nil {
		t.Fatal("failed CreateRoom left a room behind")
	}
	_, err = s.GetRoom(ctx, 999999)
	wantErr(t, err, store.ErrNotFound)

	pub := ok(s.ListPublicRooms(ctx)).must(t)
	if len(pub) != 1 || pub[0].ID != general.ID {
		t.Fatalf("ListPublicRooms = %+v", pub)
	}

	noErr(t, s.SetTopic(ctx, general.ID, "all things"))
	if got := ok(s.GetRoom(ctx, general.ID)).must(t); got.Topic != "all things" {
		t.Fatalf("topic = %q", got.Topic)
	}
	wantErr(t, s.SetTopic(ctx, 999999, "x"), store.ErrNotFound)

	pos := ok(s.RoomPosition(ctx, general.ID)).must(t)
	if pos.Epoch != general.Epoch || pos.Seq != 0 {
		t.Fatalf("RoomPosition = %+v", pos)
	}
	_, err = s.RoomPosition(ctx, 999999)
	wantErr(t, err, store.ErrNotFound)
}

func testDirectRooms(t *testing.T, h Harness) {
	s, ctx := open(t, h), ctxT(t)
	alice, bob, carol := mkUser(t, s, "alice"), mkUser(t, s, "bob"), mkUser(t, s, "carol")

	ab, created, err := s.GetOrCreateDirectRoom(ctx, alice.ID, bob.ID)
	noErr(t, err)
	if !created || ab.Kind != store.RoomDirect {
		t.Fatalf("first direct room = %+v created=%v", ab, created)
	}
	ba, created, err := s.GetOrCreateDirectRoom(ctx, bob.ID, alice.ID)
	noErr(t, err)
	if created || ba.ID != ab.ID {
		t.Fatalf("reversed pair gave room %d created=%v, want %d", ba.ID, created, ab.ID)
	}
	ac, _, err := s.GetOrCreateDirectRoom(ctx, alice.ID, carol.ID)
	noErr(t, err)
	if ac.ID == ab.ID {
		t.Fatal("different pairs share a direct room")
	}
	members := ok(s.ListMembers(ctx, ab.ID)).must(t)
	if len(members) != 2 {
		t.Fatalf("direct room members = %+v", members)
	}
	_, _, err = s.GetOrCreateDirectRoom(ctx, alice.ID, alice.ID)
	wantErr(t, err, store.ErrInvalid)
	_, _, err = s.GetOrCreateDirectRoom(ctx, alice.ID, 999999)
	wantErr(t, err, store.ErrNotFound)
	if pub := ok(s.ListPublicRooms(ctx)).must(t); len(pub) != 0 {
		t.Fatalf("direct rooms listed as public: %+v", pub)
	}

	// Racing creators of one pair end up in one room.
	dave, erin := mkUser(t, s, "dave"), mkUser(t, s, "erin")
	var wg sync.WaitGroup
	ids := make([]int64, 16)
	errs := make([]error, 16)
	for i := range ids {
		wg.Go(func() {
			a, b := dave.ID, erin.ID
			if i%2 == 1 {
				a, b = b, a
			}
			r, _, err := s.GetOrCreateDirectRoom(ctx, a, b)
			ids[i], errs[i] = r.ID, err
		})
	}
	wg.Wait()
	for i := range ids {
		noErr(t, errs[i])
		if ids[i] != ids[0] {
			t.Fatalf("racing creators got rooms %v", ids)
		}
	}
}

func testMembers(t *testing.T, h Harness) {
	s, ctx := open(t, h), ctxT(t)
	alice, bob := mkUser(t, s, "alice"), mkUser(t, s, "bob")
	room := mkRoom(t, s, "team", store.RoomPrivate, alice.ID)

	m := ok(s.AddMember(ctx, room.ID, bob.ID, store.RoleMember)).must(t)
	if m.RoomID != room.ID || m.UserID != bob.ID || m.Role != store.RoleMember || m.JoinedAt.IsZero() {
		t.Fatalf("AddMember = %+v", m)
	}
	if got := ok(s.GetMember(ctx, room.ID, bob.ID)).must(t); got != m {
		t.Fatalf("GetMember = %+v, want %+v", got, m)
	}
	_, err := s.AddMember(ctx, room.ID, bob.ID, store.RoleAdmin)
	wantErr(t, err, store.ErrConflict)
	_, err = s.AddMember(ctx, room.ID, 999999, store.RoleMember)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.AddMember(ctx, 999999, bob.ID, store.RoleMember)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.AddMember(ctx, room.ID, bob.ID, "king")
	wantErr(t, err, store.ErrInvalid)

	members := ok(s.ListMembers(ctx, room.ID)).must(t)
	if len(members) != 2 || members[0].UserID != alice.ID || members[1].UserID != bob.ID {
		t.Fatalf("ListMembers = %+v", members)
	}

	noErr(t, s.SetRole(ctx, room.ID, bob.ID, store.RoleAdmin))
	if got := ok(s.GetMember(ctx, room.ID, bob.ID)).must(t); got.Role != store.RoleAdmin {
		t.Fatalf("role = %q", got.Role)
	}
	wantErr(t, s.SetRole(ctx, room.ID, bob.ID, "king"), store.ErrInvalid)
	wantErr(t, s.SetRole(ctx, room.ID, 999999, store.RoleAdmin), store.ErrNotFound)

	if rooms := ok(s.ListUserRooms(ctx, bob.ID)).must(t); len(rooms) != 1 || rooms[0].ID != room.ID || rooms[0].Role != store.RoleAdmin {
		t.Fatalf("ListUserRooms = %+v", rooms)
	}

	noErr(t, s.RemoveMember(ctx, room.ID, bob.ID))
	wantErr(t, s.RemoveMember(ctx, room.ID, bob.ID), store.ErrNotFound)
	_, err = s.GetMember(ctx, room.ID, bob.ID)
	wantErr(t, err, store.ErrNotFound)
	if rooms := ok(s.ListUserRooms(ctx, bob.ID)).must(t); len(rooms) != 0 {
		t.Fatalf("rooms after leaving = %+v", rooms)
	}
	_, err = s.SetLastRead(ctx, room.ID, bob.ID, 1)
	wantErr(t, err, store.ErrNotFound)
}

func testUnread(t *testing.T, h Harness) {
	s, ctx := open(t, h), ctxT(t)
	alice, bob := mkUser(t, s, "alice"), mkUser(t, s, "bob")
	busy := mkRoom(t, s, "busy", store.RoomPublic, alice.ID)
	quiet := mkRoom(t, s, "quiet", store.RoomPublic, alice.ID)
	for _, r := range []store.Room{busy, quiet} {
		ok(s.AddMember(ctx, r.ID, bob.ID, store.RoleMember)).must(t)
	}

	a1 := post(t, s, busy.ID, alice.ID, "a1")
	a2 := post(t, s, busy.ID, alice.ID, "a2")
	post(t, s, busy.ID, bob.ID, "b1")
	a3 := post(t, s, busy.ID, alice.ID, "a3")
	// Edits and reactions are events, not messages: they add no unread.
	ok(s.AppendEvent(ctx, busy.ID, store.Event{Kind: store.EventEdit, UserID: alice.ID, Target: a1.Seq, Body: "a1!"})).must(t)
	ok(s.AppendEvent(ctx, busy.ID, store.Event{Kind: store.EventReactionAdd, UserID: alice.ID, Target: a1.Seq, Emoji: "👍"})).must(t)

	unread := func(user int64) map[int64]int64 {
		out := map[int64]int64{}
		for _, r := range ok(s.ListUserRooms(ctx, user)).must(t) {
			out[r.ID] = r.Unread
		}
		return out
	}
	if got := unread(bob.ID); got[busy.ID] != 3 || got[quiet.ID] != 0 {
		t.Fatalf("bob's unread = %v, want busy 3, quiet 0", got)
	}
	if got := unread(alice.ID); got[busy.ID] != 1 {
		t.Fatalf("alice's unread = %v, want busy 1 (bob's message)", got)
	}
	rooms := ok(s.ListUserRooms(ctx, bob.ID)).must(t)
	if rooms[0].ID != busy.ID {
		t.Fatalf("most recently active room first: got %+v", rooms)
	}

	if got := ok(s.SetLastRead(ctx, busy.ID, bob.ID, a2.Seq)).must(t); got != a2.Seq {
		t.Fatalf("SetLastRead = %d, want %d", got, a2.Seq)
	}
	if got := unread(bob.ID); got[busy.ID] != 1 {
		t.Fatalf("bob's unread after reading to a2 = %v, want 1", got)
	}
	// A receipt never moves back, and never past the end of the log.
	if got := ok(s.SetLastRead(ctx, busy.ID, bob.ID, a1.Seq)).must(t); got != a2.Seq {
		t.Fatalf("SetLastRead backwards = %d, want %d", got, a2.Seq)
	}
	ok(s.AppendEvent(ctx, busy.ID, store.Event{Kind: store.EventDelete, UserID: alice.ID, Target: a3.Seq})).must(t)
	if got := unread(bob.ID); got[busy.ID] != 0 {
		t.Fatalf("deleted messages count as unread: %v", got)
	}
	last := ok(s.RoomPosition(ctx, busy.ID)).must(t).Seq
	if got := ok(s.SetLastRead(ctx, busy.ID, bob.ID, last+100)).must(t); got != last {
		t.Fatalf("SetLastRead past the end = %d, want %d", got, last)
	}
	if m := ok(s.GetMember(ctx, busy.ID, bob.ID)).must(t); m.LastReadSeq != last {
		t.Fatalf("member's LastReadSeq = %d, want %d", m.LastReadSeq, last)
	}
}
