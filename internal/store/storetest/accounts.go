package storetest

import (
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/store"
)

func testUsers(t *testing.T, h Harness) {
	s, ctx := open(t, h), ctxT(t)
	before := time.Now().Add(-time.Second)
	alice := ok(s.CreateUser(ctx, store.User{Username: "Alice", PasswordHash: "h1", IsAdmin: true})).must(t)
	if alice.ID == 0 || alice.CreatedAt.Before(before) {
		t.Fatalf("created user = %+v", alice)
	}
	bob := mkUser(t, s, "bob")

	got := ok(s.GetUser(ctx, alice.ID)).must(t)
	if got != alice {
		t.Fatalf("GetUser = %+v, want %+v", got, alice)
	}
	for _, name := range []string{"alice", "ALICE", "Alice"} {
		if got := ok(s.GetUserByName(ctx, name)).must(t); got != alice {
			t.Fatalf("GetUserByName(%q) = %+v", name, got)
		}
	}
	_, err := s.CreateUser(ctx, store.User{Username: "aLiCe", PasswordHash: "x"})
	wantErr(t, err, store.ErrConflict)
	_, err = s.GetUser(ctx, 999999)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetUserByName(ctx, "carol")
	wantErr(t, err, store.ErrNotFound)

	users := ok(s.ListUsers(ctx)).must(t)
	if len(users) != 2 || users[0] != alice || users[1] != bob {
		t.Fatalf("ListUsers = %+v", users)
	}

	noErr(t, s.SetPasswordHash(ctx, bob.ID, "new"))
	if got := ok(s.GetUser(ctx, bob.ID)).must(t); got.PasswordHash != "new" {
		t.Fatalf("password hash = %q", got.PasswordHash)
	}
	wantErr(t, s.SetPasswordHash(ctx, 999999, "x"), store.ErrNotFound)
}

func testSessions(t *testing.T, h Harness) {
	s, ctx := open(t, h), ctxT(t)
	alice, bob := mkUser(t, s, "alice"), mkUser(t, s, "bob")
	now := time.Now().UTC()

	web := ok(s.CreateSession(ctx, "tok-web", store.Session{Kind: store.SessionWeb, UserID: alice.ID,
		CSRFToken: "csrf", ExpiresAt: now.Add(time.Hour)})).must(t)
	if web.ID != store.TokenID("tok-web") || web.ID == "tok-web" {
		t.Fatalf("session ID = %q, want the token's digest", web.ID)
	}
	api := ok(s.CreateSession(ctx, "tok-api", store.Session{Kind: store.SessionAPI, UserID: alice.ID, Label: "ci"})).must(t)
	ok(s.CreateSession(ctx, "tok-old", store.Session{Kind: store.SessionWeb, UserID: alice.ID,
		CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)})).must(t)
	ok(s.CreateSession(ctx, "tok-bob", store.Session{Kind: store.SessionWeb, UserID: bob.ID, ExpiresAt: now.Add(time.Hour)})).must(t)

	got := ok(s.GetSession(ctx, "tok-web")).must(t)
	if got != web {
		t.Fatalf("GetSession = %+v, want %+v", got, web)
	}
	if got := ok(s.GetSession(ctx, "tok-api")).must(t); got != api || !got.ExpiresAt.IsZero() {
		t.Fatalf("API token = %+v", got)
	}
	_, err := s.GetSession(ctx, "tok-old")
	wantErr(t, err, store.ErrNotFound) // expired
	_, err = s.GetSession(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.CreateSession(ctx, "tok-web", store.Session{Kind: store.SessionWeb, UserID: bob.ID})
	wantErr(t, err, store.ErrConflict)
	_, err = s.CreateSession(ctx, "tok-ghost", store.Session{Kind: store.SessionWeb, UserID: 999999})
	wantErr(t, err, store.ErrNotFound)

	if list := ok(s.ListSessions(ctx, alice.ID)).must(t); len(list) != 3 {
		t.Fatalf("ListSessions = %+v", list)
	}
	if n := ok(s.DeleteExpiredSessions(ctx, time.Now())).must(t); n != 1 {
		t.Fatalf("DeleteExpiredSessions = %d, want 1", n)
	}
	noErr(t, s.DeleteSession(ctx, api.ID))
	wantErr(t, s.DeleteSession(ctx, api.ID), store.ErrNotFound)
	_, err = s.GetSession(ctx, "tok-api")
	wantErr(t, err, store.ErrNotFound)

	noErr(t, s.DeleteUserSessions(ctx, alice.ID))
	if list := ok(s.ListSessions(ctx, alice.ID)).must(t); len(list) != 0 {
		t.Fatalf("sessions after DeleteUserSessions = %+v", list)
	}
	ok(s.GetSession(ctx, "tok-bob")).must(t) // other users keep theirs
}
