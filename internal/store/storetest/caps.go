package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/store"
)

// race releases n calls of create at once and returns how many succeeded;
// an error other than lost fails the test. warm, when not nil, first runs
// 8 times concurrently, so that a pooled store's connections exist and the
// racers' transactions overlap instead of each waiting for a connection of
// its own to be set up.
func race(t *testing.T, n int, warm func(), lost error, create func(i int) error) int {
	t.Helper()
	var wg sync.WaitGroup
	if warm != nil {
		for range 8 {
			wg.Go(warm)
		}
		wg.Wait()
	}
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range errs {
		wg.Go(func() {
			<-start
			errs[i] = create(i)
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, lost):
			t.Fatalf("racing creator %d: got %v, want success or %v", i, err, lost)
		}
	}
	return won
}

// testSessionCap: CreateSessionCapped counts only the user's unexpired
// sessions of the kind, refuses with ErrLimit and stores nothing at the
// cap, and holds the cap when many creators race (as cluster nodes do).
func testSessionCap(t *testing.T, h Harness) {
	s, ctx := open(t, h), ctxT(t)
	alice, bob := mkUser(t, s, "alice"), mkUser(t, s, "bob")
	now := time.Now()
	mk := func(tok string, u store.User, kind store.SessionKind, exp time.Time, max int) error {
		_, err := s.CreateSessionCapped(ctx, tok, store.Session{Kind: kind, UserID: u.ID, CreatedAt: now, ExpiresAt: exp}, max)
		return err
	}
	if err := mk("a1", alice, store.SessionAPI, time.Time{}, 3); err != nil {
		t.Fatal(err)
	}
	// Not counted: an expired token, a web session, another user's token.
	ok(s.CreateSession(ctx, "a-expired", store.Session{Kind: store.SessionAPI, UserID: alice.ID, CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(-time.Second)})).must(t)
	ok(s.CreateSession(ctx, "a-web", store.Session{Kind: store.SessionWeb, UserID: alice.ID})).must(t)
	ok(s.CreateSession(ctx, "b-api", store.Session{Kind: store.SessionAPI, UserID: bob.ID})).must(t)
	for _, tok := range []string{"a2", "a3"} {
		if err := mk(tok, alice, store.SessionAPI, now.Add(time.Hour), 3); err != nil {
			t.Fatalf("token %s under a cap of 3 (expired, web and bob's do not count): %v", tok, err)
		}
	}
	wantErr(t, mk("a4", alice, store.SessionAPI, time.Time{}, 3), store.ErrLimit)
	if _, err := s.GetSession(ctx, "a4"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused token was stored: %v", err)
	}
	wantErr(t, mk("a3", alice, store.SessionAPI, time.Time{}, 10), store.ErrConflict)
	wantErr(t, mk("ghost", store.User{ID: 999999}, store.SessionAPI, time.Time{}, 3), store.ErrNotFound)
	if err := mk("b2", bob, store.SessionAPI, time.Time{}, 3); err != nil {
		t.Fatalf("bob's second token: %v", err)
	}

	// 24 creators released at once under a cap of 8: exactly 5 more get in.
	won := race(t, 24, func() { _, _ = s.ListSessions(ctx, alice.ID) }, store.ErrLimit, func(i int) error {
		return mk(fmt.Sprintf("race%d", i), alice, store.SessionAPI, time.Time{}, 8)
	})
	live := 0
	for _, ss := range ok(s.ListSessions(ctx, alice.ID)).must(t) {
		if ss.Kind == store.SessionAPI && (ss.ExpiresAt.IsZero() || ss.ExpiresAt.After(now)) {
			live++
		}
	}
	if won != 5 || live != 8 {
		t.Fatalf("%d racing creators got in and alice holds %d unexpired API tokens, want 5 and 8", won, live)
	}
}

// testInviteCap: with a cap, CreateInvite drops spent and expired invites
// and refuses (ErrLimit, nothing stored) once max usable ones exist, also
// when creators race (each its own transaction: on PostgreSQL they run on
// different connections, as on different nodes).
func testInviteCap(t *testing.T, h Harness) {
	s, ctx := open(t, h), ctxT(t)
	admin := mkUser(t, s, "admin")
	now := time.Now()
	mk := func(id string, exp time.Time, max int) error {
		_, err := s.CreateInvite(ctx, store.Invite{ID: store.TokenID(id), CreatedBy: admin.ID, CreatedAt: now, ExpiresAt: exp, Uses: 1}, max)
		return err
	}
	for _, id := range []string{"a", "b"} {
		if err := mk(id, now.Add(time.Hour), 3); err != nil {
			t.Fatal(err)
		}
	}
	// Stored uncapped: one spent (its use taken), one expired.
	if err := mk("spent", now.Add(time.Hour), 0); err != nil {
		t.Fatal(err)
	}
	ok(s.CreateUserWithInvite(ctx, store.User{Username: "dave", PasswordHash: "h"}, store.TokenID("spent"), now)).must(t)
	if err := mk("expired", now.Add(-time.Second), 0); err != nil {
		t.Fatal(err)
	}
	if err := mk("c", now.Add(time.Hour), 3); err != nil {
		t.Fatalf("third usable invite under a cap of 3 (the spent and expired ones do not count): %v", err)
	}
	wantErr(t, mk("d", now.Add(time.Hour), 3), store.ErrLimit)
	if n := len(ok(s.ListInvites(ctx)).must(t)); n != 3 {
		t.Fatalf("%d invites stored after a refused one, want the 3 usable (spent and expired dropped)", n)
	}

	// 32 creators released at once under a cap of 5: exactly 2 more get
	// in.
	won := race(t, 32, func() { _, _ = s.ListInvites(ctx) }, store.ErrLimit, func(i int) error {
		return mk(fmt.Sprintf("race%d", i), now.Add(time.Hour), 5)
	})
	if n := len(ok(s.ListInvites(ctx)).must(t)); won != 2 || n != 5 {
		t.Fatalf("%d racing creators got in and %d invites are stored, want 2 and 5", won, n)
	}
}
