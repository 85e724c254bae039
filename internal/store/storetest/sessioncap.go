package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/store"
)

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
	// Concurrent reads first, so that a pooled store's connections exist
	// and the racers' transactions overlap.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { _, _ = s.ListSessions(ctx, alice.ID) })
	}
	wg.Wait()
	errs := make([]error, 24)
	start := make(chan struct{})
	for i := range errs {
		wg.Go(func() {
			<-start
			errs[i] = mk(fmt.Sprintf("race%d", i), alice, store.SessionAPI, time.Time{}, 8)
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrLimit):
			t.Fatalf("racing CreateSessionCapped: %v", err)
		}
	}
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
