// Package storetest is the conformance suite every store.Store
// implementation runs: the SQLite store now, the PostgreSQL store next. It
// checks behaviour through the interface only, so two implementations that
// pass it are interchangeable for the chat layer.
//
// It must never import hub, session, transport, server or chat.
package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/sori-dev/sori/internal/store"
)

// Harness tells the suite how to get stores.
type Harness struct {
	// Open returns a new, empty store whose storage belongs to t alone. The
	// suite closes it; Close must tolerate being called again.
	Open func(t *testing.T) store.Store
	// Reopen closes s and returns a new store over the same storage, as a
	// server restart would. Nil skips the durability tests.
	Reopen func(t *testing.T, s store.Store) store.Store
}

// Run runs the whole suite. Each test gets its own store and runs in
// parallel with the others.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Harness{Open: openTemp, Reopen: reopen})
//	}
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"Users", testUsers},
		{"Sessions", testSessions},
		{"SessionCap", testSessionCap},
		{"RevokeCredentials", testRevokeCredentials},
		{"LastOwner", testLastOwner},
		{"Rooms", testRooms},
		{"DirectRooms", testDirectRooms},
		{"Members", testMembers},
		{"Messages", testMessages},
		{"RejectedEventsTakeNoSeq", testRejectedEvents},
		{"Pagination", testPagination},
		{"UnreadCounts", testUnread},
		{"ConcurrentAppendsManyRooms", testConcurrentManyRooms},
		{"ConcurrentAppendsOneRoom", testConcurrentOneRoom},
		{"Search", testSearch},
		{"IdempotentSend", testIdempotentSend},
		{"Threads", testThreads},
		{"Pins", testPins},
		{"Mentions", testMentions},
		{"PushSubscriptions", testPushSubscriptions},
		{"Profiles", testProfiles},
		{"Disabled", testDisabled},
		{"Invites", testInvites},
		{"InviteCap", testInviteCap},
		{"SettingsAndRoomList", testSettingsAndRoomList},
		{"Files", testFiles},
		{"ContextAndClose", testContextAndClose},
		{"Durability", testDurability},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, h)
		})
	}
}

// open returns a store that is closed when the test ends.
func open(t *testing.T, h Harness) store.Store {
	t.Helper()
	s := h.Open(t)
	t.Cleanup(func() { s.Close() })
	return s
}

// ctxT is the context of a test's store calls: it ends with the test. It
// sets no deadline of its own: the suite checks what the store does, not
// how fast (a fixed 30 s failed the unbatched concurrent appends on a
// loaded 2-core machine); a hang is caught by go test's -timeout.
func ctxT(t *testing.T) context.Context { return t.Context() }

// result carries a call's two results to must, since Go cannot pass a
// multi-value call alongside another argument.
type result[T any] struct {
	v   T
	err error
}

func ok[T any](v T, err error) result[T] { return result[T]{v, err} }

// must returns the value, failing the test on an error.
func (r result[T]) must(t *testing.T) T {
	t.Helper()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.v
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want %v", err, want)
	}
}

func mkUser(t *testing.T, s store.Store, name string) store.User {
	t.Helper()
	return ok(s.CreateUser(ctxT(t), store.User{Username: name, PasswordHash: "hash-" + name})).must(t)
}

func mkRoom(t *testing.T, s store.Store, name string, kind store.RoomKind, owner int64) store.Room {
	t.Helper()
	return ok(s.CreateRoom(ctxT(t), store.Room{Name: name, Title: "Title " + name, Kind: kind, CreatedBy: owner})).must(t)
}

func post(t *testing.T, s store.Store, room, user int64, body string) store.Event {
	t.Helper()
	return ok(s.AppendEvent(ctxT(t), room, store.Event{Kind: store.EventMessage, UserID: user, Body: body})).must(t)
}
