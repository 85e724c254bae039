package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/store"
)

// testRevokeCredentials: one call bumps the generation, stamps the time,
// ends every session and token of that user only, and sets the new hash.
func testRevokeCredentials(t *testing.T, h Harness) {
	s, ctx := open(t, h), ctxT(t)
	alice, bob := mkUser(t, s, "alice"), mkUser(t, s, "bob")
	if alice.CredentialsGen != 0 || !alice.CredentialsChangedAt.IsZero() {
		t.Fatalf("new user = %+v, want generation 0 and no change", alice)
	}
	start := time.Now().Add(-time.Second)
	ok(s.CreateSession(ctx, "a-web", store.Session{Kind: store.SessionWeb, UserID: alice.ID})).must(t)
	ok(s.CreateSession(ctx, "a-api", store.Session{Kind: store.SessionAPI, UserID: alice.ID})).must(t)
	ok(s.CreateSession(ctx, "b-web", store.Session{Kind: store.SessionWeb, UserID: bob.ID})).must(t)

	u := ok(s.RevokeCredentials(ctx, alice.ID, "newhash")).must(t)
	if u.CredentialsGen != 1 || u.CredentialsChangedAt.Before(start) || u.PasswordHash != "newhash" || u.Username != "alice" {
		t.Fatalf("after revoke = %+v", u)
	}
	if got := ok(s.GetUser(ctx, alice.ID)).must(t); got != u {
		t.Fatalf("GetUser = %+v, want %+v", got, u)
	}
	if list := ok(s.ListSessions(ctx, alice.ID)).must(t); len(list) != 0 {
		t.Fatalf("alice's sessions after revoke = %+v", list)
	}
	ok(s.GetSession(ctx, "b-web")).must(t) // bob keeps his

	// Without a hash ("log out everywhere") the password stays.
	u2 := ok(s.RevokeCredentials(ctx, alice.ID, "")).must(t)
	if u2.CredentialsGen != 2 || u2.PasswordHash != "newhash" || !u2.CredentialsChangedAt.After(u.CredentialsChangedAt) {
		t.Fatalf("second revoke = %+v after %+v: want gen 2, same hash, a later time", u2, u)
	}
	_, err := s.RevokeCredentials(ctx, 999999, "")
	wantErr(t, err, store.ErrNotFound)

	// Changes since a time, oldest first; the cursor excludes what it saw.
	b := ok(s.RevokeCredentials(ctx, bob.ID, "")).must(t)
	got := ok(s.CredentialsChangedSince(ctx, time.Time{})).must(t)
	if len(got) != 2 || got[0].ID != alice.ID || got[1].ID != bob.ID || got[1] != b {
		t.Fatalf("CredentialsChangedSince(zero) = %+v", got)
	}
	if got := ok(s.CredentialsChangedSince(ctx, u2.CredentialsChangedAt)).must(t); len(got) != 1 || got[0].ID != bob.ID {
		t.Fatalf("CredentialsChangedSince(alice's change) = %+v, want bob only", got)
	}
	if got := ok(s.CredentialsChangedSince(ctx, b.CredentialsChangedAt)).must(t); len(got) != 0 {
		t.Fatalf("CredentialsChangedSince(last change) = %+v, want none", got)
	}

	// Concurrent revocations each count: the generation is not lost.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.RevokeCredentials(ctx, bob.ID, ""); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := ok(s.GetUser(ctx, bob.ID)).must(t); got.CredentialsGen != 9 {
		t.Fatalf("generation after 9 revocations = %d", got.CredentialsGen)
	}
}

// testLastOwner: a room with members keeps an owner whatever order owners
// leave or demote each other in, also when they do it at once.
func testLastOwner(t *testing.T, h Harness) {
	s, ctx := open(t, h), ctxT(t)
	alice, bob, carol := mkUser(t, s, "alice"), mkUser(t, s, "bob"), mkUser(t, s, "carol")
	room := mkRoom(t, s, "team", store.RoomPrivate, alice.ID)
	ok(s.AddMember(ctx, room.ID, bob.ID, store.RoleOwner)).must(t)
	ok(s.AddMember(ctx, room.ID, carol.ID, store.RoleMember)).must(t)

	owners := func() int {
		n := 0
		for _, m := range ok(s.ListMembers(ctx, room.ID)).must(t) {
			if m.Role == store.RoleOwner {
				n++
			}
		}
		return n
	}

	// Both owners leave at once: one of them must stay.
	errs := make(chan error, 2)
	for _, u := range []int64{alice.ID, bob.ID} {
		go func() { errs <- s.RemoveMember(ctx, room.ID, u) }()
	}
	e1, e2 := <-errs, <-errs
	if (e1 == nil) == (e2 == nil) {
		t.Fatalf("two owners leaving at once: %v, %v; want one success and one ErrConflict", e1, e2)
	}
	if e1 != nil {
		e1, e2 = e2, e1
	}
	wantErr(t, e2, store.ErrConflict)
	if owners() != 1 {
		t.Fatalf("owners after both left = %d, want 1", owners())
	}
	// The remaining owner cannot be demoted, nor leave while carol is there.
	var last int64
	for _, m := range ok(s.ListMembers(ctx, room.ID)).must(t) {
		if m.Role == store.RoleOwner {
			last = m.UserID
		}
	}
	wantErr(t, s.SetRole(ctx, room.ID, last, store.RoleAdmin), store.ErrConflict)
	wantErr(t, s.RemoveMember(ctx, room.ID, last), store.ErrConflict)
	noErr(t, s.SetRole(ctx, room.ID, last, store.RoleOwner)) // staying owner is fine

	// Two owners demoting each other at once: one demotion wins.
	noErr(t, s.SetRole(ctx, room.ID, carol.ID, store.RoleOwner))
	for _, u := range []int64{last, carol.ID} {
		go func() { errs <- s.SetRole(ctx, room.ID, u, store.RoleMember) }()
	}
	e1, e2 = <-errs, <-errs
	if (e1 == nil) == (e2 == nil) || owners() != 1 {
		t.Fatalf("two owners demoting each other: %v, %v, %d owners left; want one success and 1 owner", e1, e2, owners())
	}

	// Alone, the last owner may leave (the room is then empty).
	noErr(t, s.RemoveMember(ctx, room.ID, func() int64 {
		for _, m := range ok(s.ListMembers(ctx, room.ID)).must(t) {
			if m.Role != store.RoleOwner {
				return m.UserID
			}
		}
		return 0
	}()))
	for _, m := range ok(s.ListMembers(ctx, room.ID)).must(t) {
		noErr(t, s.RemoveMember(ctx, room.ID, m.UserID))
	}
	if ms := ok(s.ListMembers(ctx, room.ID)).must(t); len(ms) != 0 {
		t.Fatalf("members left = %+v", ms)
	}
	wantErr(t, s.RemoveMember(ctx, room.ID, alice.ID), store.ErrNotFound)
}
