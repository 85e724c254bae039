package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/sori-dev/sori/internal/store"
)

// Idempotent send, threads, pins, mentions and notification levels (issue
// 14).

func testIdempotentSend(t *testing.T, h Harness) {
	s, ctx := open(t, h), ctxT(t)
	alice := mkUser(t, s, "alice")
	bob := mkUser(t, s, "bob")
	room := mkRoom(t, s, "room", store.RoomPublic, alice.ID)
	other := mkRoom(t, s, "other", store.RoomPublic, alice.ID)
	msg := func(user int64, body, cid string) store.Event {
		return store.Event{Kind: store.EventMessage, UserID: user, Body: body, ClientID: cid}
	}
	first := ok(s.AppendEvent(ctx, room.ID, msg(alice.ID, "hello", "c-1"))).must(t)
	if first.Duplicate || first.ClientID != "c-1" {
		t.Fatalf("first append = %+v", first)
	}
	again := ok(s.AppendEvent(ctx, room.ID, msg(alice.ID, "hello (retry)", "c-1"))).must(t)
	if !again.Duplicate || again.Seq != first.Seq || again.Body != "hello" || again.ClientID != "c-1" {
		t.Fatalf("retry = %+v, want the first (seq %d) marked duplicate", again, first.Seq)
	}
	if pos := ok(s.RoomPosition(ctx, room.ID)).must(t); pos.Seq != first.Seq {
		t.Fatalf("a duplicate took a seq: head %d, want %d", pos.Seq, first.Seq)
	}
	// The key is the author's, in this room.
	if ev := ok(s.AppendEvent(ctx, room.ID, msg(bob.ID, "hi", "c-1"))).must(t); ev.Duplicate {
		t.Fatal("another author's equal client id was taken as a duplicate")
	}
	if ev := ok(s.AppendEvent(ctx, other.ID, msg(alice.ID, "hi", "c-1"))).must(t); ev.Duplicate {
		t.Fatal("the same client id in another room was taken as a duplicate")
	}
	// Messages and the log carry the id back.
	m := ok(s.GetMessage(ctx, room.ID, first.Seq)).must(t)
	evs := ok(s.EventsAfter(ctx, room.ID, 0, 10)).must(t)
	if m.ClientID != "c-1" || evs[0].ClientID != "c-1" {
		t.Fatalf("client id not kept: message %+v, event %+v", m, evs[0])
	}
	// A deleted message still answers its retries: the retry must not post
	// the text again.
	ok(s.AppendEvent(ctx, room.ID, store.Event{Kind: store.EventDelete, UserID: alice.ID, Target: first.Seq})).must(t)
	if ev := ok(s.AppendEvent(ctx, room.ID, msg(alice.ID, "hello", "c-1"))).must(t); !ev.Duplicate || ev.Seq != first.Seq {
		t.Fatalf("retry after delete = %+v", ev)
	}
	if _, err := s.AppendEvent(ctx, room.ID, msg(alice.ID, "x", string(make([]byte, store.MaxClientID+1)))); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("over-long client id: %v", err)
	}

	// Concurrent duplicates resolve to one message.
	const n = 16
	var wg sync.WaitGroup
	got := make([]store.Event, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = s.AppendEvent(ctx, room.ID, msg(bob.ID, fmt.Sprint("race ", i), "race"))
		}()
	}
	wg.Wait()
	originals := 0
	for i := range n {
		noErr(t, errs[i])
		if got[i].Seq != got[0].Seq {
			t.Fatalf("concurrent duplicates got seqs %d and %d", got[0].Seq, got[i].Seq)
		}
		if !got[i].Duplicate {
			originals++
		}
	}
	if originals != 1 {
		t.Fatalf("%d of %d concurrent duplicates were stored, want 1", originals, n)
	}
}

func testThreads(t *testing.T, h Harness) {
	s, ctx := open(t, h), ctxT(t)
	alice := mkUser(t, s, "alice")
	room := mkRoom(t, s, "room", store.RoomPublic, alice.ID)
	root := post(t, s, room.ID, alice.ID, "root")
	post(t, s, room.ID, alice.ID, "main timeline")
	reply := func(body string) store.Event {
		return ok(s.AppendEvent(ctx, room.ID, store.Event{Kind: store.EventMessage, UserID: alice.ID, Body: body, Thread: root.Seq})).must(t)
	}
	r1, r2 := reply("first reply"), reply("welcome to the thread")
	if r1.Thread != root.Seq {
		t.Fatalf("reply = %+v", r1)
	}
	m := ok(s.GetMessage(ctx, room.ID, root.Seq)).must(t)
	if m.ThreadReplies != 2 || m.ThreadLastSeq != r2.Seq {
		t.Fatalf("root = %+v, want 2 replies, last %d", m, r2.Seq)
	}
	th := ok(s.ThreadMessages(ctx, room.ID, root.Seq, 0, 10)).must(t)
	if len(th) != 2 || th[0].Seq != r1.Seq || th[1].Seq != r2.Seq || th[1].Thread != root.Seq {
		t.Fatalf("thread = %+v", th)
	}
	if th := ok(s.ThreadMessages(ctx, room.ID, root.Seq, r1.Seq, 10)).must(t); len(th) != 1 || th[0].Seq != r2.Seq {
		t.Fatalf("thread after %d = %+v", r1.Seq, th)
	}
	// Replies are in the log with their thread, and found by search (by a
	// prefix, too).
	evs := ok(s.EventsAfter(ctx, room.ID, r1.Seq-1, 1)).must(t)
	if evs[0].Thread != root.Seq {
		t.Fatalf("log event = %+v", evs[0])
	}
	found := ok(s.SearchMessages(ctx, []int64{room.ID}, "welc", 10)).must(t)
	if len(found) != 1 || found[0].Seq != r2.Seq || found[0].Thread != root.Seq {
		t.Fatalf(`search "welc" = %+v, want the thread reply`, found)
	}
	_, err := s.AppendEvent(ctx, room.ID, store.Event{Kind: store.EventMessage, UserID: alice.ID, Body: "x", Thread: 999})
	wantErr(t, err, store.ErrNotFound)
	ok(s.AppendEvent(ctx, room.ID, store.Event{Kind: store.EventDelete, UserID: alice.ID, Target: root.Seq})).must(t)
	_, err = s.AppendEvent(ctx, room.ID, store.Event{Kind: store.EventMessage, UserID: alice.ID, Body: "x", Thread: root.Seq})
	wantErr(t, err, store.ErrConflict)
}

func testPins(t *testing.T, h Harness) {
	s, ctx := open(t, h), ctxT(t)
	alice := mkUser(t, s, "alice")
	bob := mkUser(t, s, "bob")
	room := mkRoom(t, s, "room", store.RoomPublic, alice.ID)
	if ps := ok(s.ListPins(ctx, room.ID)).must(t); len(ps) != 0 {
		t.Fatalf("pins of a new room = %v", ps)
	}
	a := post(t, s, room.ID, alice.ID, "a")
	b := post(t, s, room.ID, alice.ID, "b")
	pin := func(kind store.EventKind, user int64, target uint64) error {
		_, err := s.AppendEvent(ctx, room.ID, store.Event{Kind: kind, UserID: user, Target: target})
		return err
	}
	noErr(t, pin(store.EventPin, bob.ID, a.Seq))
	noErr(t, pin(store.EventPin, alice.ID, b.Seq))
	wantErr(t, pin(store.EventPin, alice.ID, a.Seq), store.ErrConflict)
	wantErr(t, pin(store.EventPin, alice.ID, 999), store.ErrNotFound)
	ps := ok(s.ListPins(ctx, room.ID)).must(t)
	if len(ps) != 2 || ps[0].Seq != b.Seq || ps[1].Seq != a.Seq || ps[1].PinnedBy != bob.ID || ps[1].Body != "a" || ps[1].PinnedAt.IsZero() {
		t.Fatalf("pins = %+v", ps)
	}
	evs := ok(s.LatestEvents(ctx, room.ID, 1)).must(t)
	if evs[0].Kind != store.EventPin || evs[0].Target != b.Seq {
		t.Fatalf("pin event = %+v", evs[0])
	}
	noErr(t, pin(store.EventUnpin, alice.ID, a.Seq))
	wantErr(t, pin(store.EventUnpin, alice.ID, a.Seq), store.ErrNotFound)
	// Deleting a pinned message unpins it.
	ok(s.AppendEvent(ctx, room.ID, store.Event{Kind: store.EventDelete, UserID: alice.ID, Target: b.Seq})).must(t)
	if ps := ok(s.ListPins(ctx, room.ID)).must(t); len(ps) != 0 {
		t.Fatalf("pins after unpin and delete = %+v", ps)
	}
	wantErr(t, pin(store.EventPin, alice.ID, b.Seq), store.ErrConflict)
	_, err := s.ListPins(ctx, 999)
	wantErr(t, err, store.ErrNotFound)
}

func testMentions(t *testing.T, h Harness) {
	s, ctx := open(t, h), ctxT(t)
	alice := mkUser(t, s, "alice")
	bob := mkUser(t, s, "bob")
	carol := mkUser(t, s, "carol")
	room := mkRoom(t, s, "room", store.RoomPublic, alice.ID)
	ok(s.AddMember(ctx, room.ID, bob.ID, store.RoleMember)).must(t)
	ok(s.AddMember(ctx, room.ID, carol.ID, store.RoleMember)).must(t)
	summary := func(user int64, roomID int64) store.RoomSummary {
		t.Helper()
		for _, rs := range ok(s.ListUserRooms(ctx, user)).must(t) {
			if rs.ID == roomID {
				return rs
			}
		}
		t.Fatalf("room %d not listed for user %d", roomID, user)
		return store.RoomSummary{}
	}
	if rs := summary(bob.ID, room.ID); rs.Notify != store.NotifyAll || rs.Mentions != 0 {
		t.Fatalf("new member = %+v", rs)
	}
	m1 := ok(s.AppendEvent(ctx, room.ID, store.Event{Kind: store.EventMessage, UserID: alice.ID, Body: "@bob @carol look", Mentions: []int64{carol.ID, bob.ID, bob.ID}})).must(t)
	post(t, s, room.ID, alice.ID, "no mention")
	all := ok(s.AppendEvent(ctx, room.ID, store.Event{Kind: store.EventMessage, UserID: alice.ID, Body: "@room @bob", Mentions: []int64{bob.ID}, MentionRoom: true})).must(t)
	if fmt.Sprint(m1.Mentions) != fmt.Sprint([]int64{bob.ID, carol.ID}) {
		t.Fatalf("mentions = %v, want sorted without repeats", m1.Mentions)
	}
	m := ok(s.GetMessage(ctx, room.ID, all.Seq)).must(t)
	if !m.MentionRoom || fmt.Sprint(m.Mentions) != fmt.Sprint([]int64{bob.ID}) {
		t.Fatalf("message = %+v", m)
	}
	// bob: named twice and @room once, but the @room message also names
	// him, so 2; unread counts all 3.
	if rs := summary(bob.ID, room.ID); rs.Mentions != 2 || rs.Unread != 3 {
		t.Fatalf("bob: mentions %d unread %d, want 2 and 3", rs.Mentions, rs.Unread)
	}
	if rs := summary(alice.ID, room.ID); rs.Mentions != 0 {
		t.Fatalf("the author's own @room counted: %d", rs.Mentions)
	}
	ok(s.SetLastRead(ctx, room.ID, bob.ID, m1.Seq)).must(t)
	if rs := summary(bob.ID, room.ID); rs.Mentions != 1 {
		t.Fatalf("bob after reading the first: %d", rs.Mentions)
	}
	ok(s.AppendEvent(ctx, room.ID, store.Event{Kind: store.EventDelete, UserID: alice.ID, Target: all.Seq})).must(t)
	if rs := summary(bob.ID, room.ID); rs.Mentions != 0 {
		t.Fatalf("a deleted message's mention counted: %d", rs.Mentions)
	}
	// In a direct room every unread message counts.
	dm, _, err := s.GetOrCreateDirectRoom(ctx, alice.ID, bob.ID)
	noErr(t, err)
	post(t, s, dm.ID, alice.ID, "hi")
	post(t, s, dm.ID, alice.ID, "there")
	if rs := summary(bob.ID, dm.ID); rs.Mentions != 2 {
		t.Fatalf("direct room mentions = %d, want 2", rs.Mentions)
	}

	noErr(t, s.SetNotify(ctx, room.ID, bob.ID, store.NotifyNone))
	if rs := summary(bob.ID, room.ID); rs.Notify != store.NotifyNone {
		t.Fatalf("notify = %q", rs.Notify)
	}
	if mb := ok(s.GetMember(ctx, room.ID, bob.ID)).must(t); mb.Notify != store.NotifyNone {
		t.Fatalf("member notify = %q", mb.Notify)
	}
	wantErr(t, s.SetNotify(ctx, room.ID, bob.ID, "loud"), store.ErrInvalid)
	stranger := mkUser(t, s, "dave")
	wantErr(t, s.SetNotify(ctx, room.ID, stranger.ID, store.NotifyAll), store.ErrNotFound)
}

func testPushSubscriptions(t *testing.T, h Harness) {
	s, ctx := open(t, h), ctxT(t)
	alice := mkUser(t, s, "alice")
	bob := mkUser(t, s, "bob")
	sub := func(user int64, endpoint string) store.PushSubscription {
		t.Helper()
		return ok(s.AddPushSubscription(ctx, store.PushSubscription{UserID: user, Endpoint: endpoint, P256DH: "k-" + endpoint, Auth: "a"}, 3)).must(t)
	}
	a1 := sub(alice.ID, "https://push.example/1")
	if a1.ID == "" || a1.CreatedAt.IsZero() {
		t.Fatalf("added %+v", a1)
	}
	sub(alice.ID, "https://push.example/2")
	// The same endpoint again (say, after another login in that browser)
	// replaces the first, even for another user.
	b1 := sub(bob.ID, "https://push.example/1")
	if got := ok(s.ListPushSubscriptions(ctx, alice.ID)).must(t); len(got) != 1 || got[0].Endpoint != "https://push.example/2" {
		t.Fatalf("alice's after bob took endpoint 1: %+v", got)
	}
	if got := ok(s.ListPushSubscriptions(ctx, bob.ID)).must(t); len(got) != 1 || got[0].ID != b1.ID || got[0].P256DH != "k-https://push.example/1" {
		t.Fatalf("bob's: %+v", got)
	}
	// Bounded: the oldest go.
	for i := 3; i <= 6; i++ {
		sub(alice.ID, fmt.Sprint("https://push.example/", i))
	}
	got := ok(s.ListPushSubscriptions(ctx, alice.ID)).must(t)
	if len(got) != 3 || got[0].Endpoint != "https://push.example/4" || got[2].Endpoint != "https://push.example/6" {
		t.Fatalf("alice's after 6: %+v", got)
	}
	wantErr(t, s.DeletePushSubscription(ctx, alice.ID, b1.ID), store.ErrNotFound)
	noErr(t, s.DeletePushSubscription(ctx, bob.ID, b1.ID))
	wantErr(t, s.DeletePushSubscription(ctx, bob.ID, b1.ID), store.ErrNotFound)
	_, err := s.AddPushSubscription(ctx, store.PushSubscription{UserID: 999, Endpoint: "https://x", P256DH: "k", Auth: "a"}, 3)
	wantErr(t, err, store.ErrNotFound)
}
