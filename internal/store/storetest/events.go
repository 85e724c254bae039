package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/sori-dev/sori/internal/store"
)

func testMessages(t *testing.T, h Harness) {
	s, ctx := open(t, h), ctxT(t)
	alice, bob := mkUser(t, s, "alice"), mkUser(t, s, "bob")
	room := mkRoom(t, s, "general", store.RoomPublic, alice.ID)

	hello := post(t, s, room.ID, alice.ID, "hello")
	if hello.Seq != 1 || hello.RoomID != room.ID || hello.CreatedAt.IsZero() {
		t.Fatalf("first event = %+v", hello)
	}
	reply := ok(s.AppendEvent(ctx, room.ID, store.Event{Kind: store.EventMessage, UserID: bob.ID, Body: "hi", ReplyTo: hello.Seq})).must(t)
	edit := ok(s.AppendEvent(ctx, room.ID, store.Event{Kind: store.EventEdit, UserID: alice.ID, Target: hello.Seq, Body: "hello, world"})).must(t)
	ok(s.AppendEvent(ctx, room.ID, store.Event{Kind: store.EventReactionAdd, UserID: bob.ID, Target: hello.Seq, Emoji: "👍"})).must(t)
	ok(s.AppendEvent(ctx, room.ID, store.Event{Kind: store.EventReactionAdd, UserID: alice.ID, Target: hello.Seq, Emoji: "👍"})).must(t)
	ok(s.AppendEvent(ctx, room.ID, store.Event{Kind: store.EventReactionAdd, UserID: bob.ID, Target: hello.Seq, Emoji: "🎉"})).must(t)
	ok(s.AppendEvent(ctx, room.ID, store.Event{Kind: store.EventReactionRemove, UserID: bob.ID, Target: hello.Seq, Emoji: "🎉"})).must(t)

	m := ok(s.GetMessage(ctx, room.ID, hello.Seq)).must(t)
	if m.Body != "hello, world" || m.AuthorID != alice.ID || !m.EditedAt.Equal(edit.CreatedAt) || m.Deleted ||
		!m.CreatedAt.Equal(hello.CreatedAt) {
		t.Fatalf("edited message = %+v", m)
	}
	wantReactions := []store.Reaction{{Emoji: "👍", UserIDs: []int64{alice.ID, bob.ID}}}
	if len(m.Reactions) != 1 || m.Reactions[0].Emoji != "👍" || !slices.Equal(m.Reactions[0].UserIDs, wantReactions[0].UserIDs) {
		t.Fatalf("reactions = %+v, want %+v", m.Reactions, wantReactions)
	}
	if r := ok(s.GetMessage(ctx, room.ID, reply.Seq)).must(t); r.ReplyTo != hello.Seq || r.Body != "hi" || r.Reactions != nil {
		t.Fatalf("reply = %+v", r)
	}
	_, err := s.GetMessage(ctx, room.ID, edit.Seq) // an edit event is not a message
	wantErr(t, err, store.ErrNotFound)

	del := ok(s.AppendEvent(ctx, room.ID, store.Event{Kind: store.EventDelete, UserID: alice.ID, Target: hello.Seq})).must(t)
	m = ok(s.GetMessage(ctx, room.ID, hello.Seq)).must(t)
	if !m.Deleted || m.Body != "" || m.Reactions != nil {
		t.Fatalf("deleted message = %+v", m)
	}

	evs := ok(s.EventsAfter(ctx, room.ID, 0, 0)).must(t)
	if len(evs) != int(del.Seq) {
		t.Fatalf("EventsAfter(0) returned %d events, want %d", len(evs), del.Seq)
	}
	kinds := []store.EventKind{store.EventMessage, store.EventMessage, store.EventEdit, store.EventReactionAdd,
		store.EventReactionAdd, store.EventReactionAdd, store.EventReactionRemove, store.EventDelete}
	for i, e := range evs {
		if e.Seq != uint64(i+1) || e.Kind != kinds[i] || e.RoomID != room.ID {
			t.Fatalf("event %d = %+v, want seq %d kind %s", i, e, i+1, kinds[i])
		}
	}
	// The delete scrubbed the text from the log, not only from the message.
	if evs[0].Body != "" || evs[2].Body != "" {
		t.Fatalf("deleted text still in the log: %q, %q", evs[0].Body, evs[2].Body)
	}
	if evs[1].Body != "hi" || evs[1].ReplyTo != hello.Seq || evs[3].Emoji != "👍" || evs[3].Target != hello.Seq {
		t.Fatalf("events lost fields: %+v", evs[1:4])
	}
	if got := ok(s.EventsAfter(ctx, room.ID, 5, 2)).must(t); len(got) != 2 || got[0].Seq != 6 || got[1].Seq != 7 {
		t.Fatalf("EventsAfter(5, 2) = %+v", got)
	}
	if got := ok(s.EventsAfter(ctx, room.ID, del.Seq, 10)).must(t); len(got) != 0 {
		t.Fatalf("EventsAfter(last) = %+v", got)
	}
	if got := ok(s.LatestEvents(ctx, room.ID, 3)).must(t); len(got) != 3 || got[0].Seq != 6 || got[2].Seq != del.Seq {
		t.Fatalf("LatestEvents(3) = %+v", got)
	}
	pos := ok(s.RoomPosition(ctx, room.ID)).must(t)
	if pos.Seq != del.Seq || pos.Epoch != room.Epoch {
		t.Fatalf("RoomPosition = %+v", pos)
	}
	if r := ok(s.GetRoom(ctx, room.ID)).must(t); r.LastSeq != del.Seq {
		t.Fatalf("room LastSeq = %d, want %d", r.LastSeq, del.Seq)
	}
	_, err = s.EventsAfter(ctx, 999999, 0, 10)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetMessage(ctx, room.ID, 999)
	wantErr(t, err, store.ErrNotFound)
}

func testRejectedEvents(t *testing.T, h Harness) {
	s, ctx := open(t, h), ctxT(t)
	alice := mkUser(t, s, "alice")
	room := mkRoom(t, s, "general", store.RoomPublic, alice.ID)
	other := mkRoom(t, s, "other", store.RoomPublic, alice.ID)
	msg := post(t, s, room.ID, alice.ID, "one")
	otherMsg := post(t, s, other.ID, alice.ID, "elsewhere")
	gone := post(t, s, room.ID, alice.ID, "gone")
	ok(s.AppendEvent(ctx, room.ID, store.Event{Kind: store.EventDelete, UserID: alice.ID, Target: gone.Seq})).must(t)
	ok(s.AppendEvent(ctx, room.ID, store.Event{Kind: store.EventReactionAdd, UserID: alice.ID, Target: msg.Seq, Emoji: "x"})).must(t)
	last := ok(s.RoomPosition(ctx, room.ID)).must(t).Seq

	cases := []struct {
		name string
		room int64
		ev   store.Event
		want error
	}{
		{"unknown kind", room.ID, store.Event{Kind: "shout", UserID: alice.ID}, store.ErrInvalid},
		{"edit without target", room.ID, store.Event{Kind: store.EventEdit, UserID: alice.ID, Body: "x"}, store.ErrInvalid},
		{"reaction without emoji", room.ID, store.Event{Kind: store.EventReactionAdd, UserID: alice.ID, Target: msg.Seq}, store.ErrInvalid},
		{"missing room", 999999, store.Event{Kind: store.EventMessage, UserID: alice.ID, Body: "x"}, store.ErrNotFound},
		{"missing author", room.ID, store.Event{Kind: store.EventMessage, UserID: 999999, Body: "x"}, store.ErrNotFound},
		{"reply to missing", room.ID, store.Event{Kind: store.EventMessage, UserID: alice.ID, Body: "x", ReplyTo: 999}, store.ErrNotFound},
		{"edit missing", room.ID, store.Event{Kind: store.EventEdit, UserID: alice.ID, Target: 999, Body: "x"}, store.ErrNotFound},
		{"edit of another room's message", room.ID, store.Event{Kind: store.EventEdit, UserID: alice.ID, Target: otherMsg.Seq + 100, Body: "x"}, store.ErrNotFound},
		{"edit a non-message event", room.ID, store.Event{Kind: store.EventEdit, UserID: alice.ID, Target: last, Body: "x"}, store.ErrNotFound},
		{"edit deleted", room.ID, store.Event{Kind: store.EventEdit, UserID: alice.ID, Target: gone.Seq, Body: "x"}, store.ErrConflict},
		{"delete deleted", room.ID, store.Event{Kind: store.EventDelete, UserID: alice.ID, Target: gone.Seq}, store.ErrConflict},
		{"react to deleted", room.ID, store.Event{Kind: store.EventReactionAdd, UserID: alice.ID, Target: gone.Seq, Emoji: "x"}, store.ErrConflict},
		{"react twice", room.ID, store.Event{Kind: store.EventReactionAdd, UserID: alice.ID, Target: msg.Seq, Emoji: "x"}, store.ErrConflict},
		{"remove absent reaction", room.ID, store.Event{Kind: store.EventReactionRemove, UserID: alice.ID, Target: msg.Seq, Emoji: "y"}, store.ErrNotFound},
	}
	for _, tc := range cases {
		_, err := s.AppendEvent(ctx, tc.room, tc.ev)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	// None of them took a seq: the next event follows the last good one.
	if next := post(t, s, room.ID, alice.ID, "next"); next.Seq != last+1 {
		t.Fatalf("seq after rejected events = %d, want %d", next.Seq, last+1)
	}
	if m := ok(s.GetMessage(ctx, room.ID, msg.Seq)).must(t); m.Body != "one" || len(m.Reactions) != 1 {
		t.Fatalf("rejected events changed a message: %+v", m)
	}
}

func testPagination(t *testing.T, h Harness) {
	s, ctx := open(t, h), ctxT(t)
	alice := mkUser(t, s, "alice")
	room := mkRoom(t, s, "general", store.RoomPublic, alice.ID)
	empty := mkRoom(t, s, "empty", store.RoomPublic, alice.ID)
	for i := 1; i <= 10; i++ {
		post(t, s, room.ID, alice.ID, fmt.Sprint("m", i))
	}
	// An edit takes seq 11, so message seqs and event seqs differ from here.
	ok(s.AppendEvent(ctx, room.ID, store.Event{Kind: store.EventEdit, UserID: alice.ID, Target: 3, Body: "m3'"})).must(t)
	post(t, s, room.ID, alice.ID, "m12")

	seqs := func(ms []store.Message) []uint64 {
		var out []uint64
		for _, m := range ms {
			out = append(out, m.Seq)
		}
		return out
	}
	check := func(name string, ms []store.Message, err error, want ...uint64) {
		t.Helper()
		noErr(t, err)
		if got := seqs(ms); !slices.Equal(got, want) {
			t.Fatalf("%s = %v, want %v", name, got, want)
		}
	}
	ms, err := s.MessagesBefore(ctx, room.ID, 0, 3)
	check("MessagesBefore(0, 3)", ms, err, 12, 10, 9)
	ms, err = s.MessagesBefore(ctx, room.ID, 9, 3)
	check("MessagesBefore(9, 3)", ms, err, 8, 7, 6)
	ms, err = s.MessagesBefore(ctx, room.ID, 2, 3)
	check("MessagesBefore(2, 3)", ms, err, 1)
	ms, err = s.MessagesAfter(ctx, room.ID, 0, 3)
	check("MessagesAfter(0, 3)", ms, err, 1, 2, 3)
	ms, err = s.MessagesAfter(ctx, room.ID, 9, 5)
	check("MessagesAfter(9, 5)", ms, err, 10, 12)
	if ms[0].Body != "m10" || ms[1].Body != "m12" {
		t.Fatalf("bodies = %q, %q", ms[0].Body, ms[1].Body)
	}
	ms, err = s.MessagesAfter(ctx, room.ID, 2, 1)
	check("MessagesAfter(2, 1)", ms, err, 3)
	if ms[0].Body != "m3'" || ms[0].EditedAt.IsZero() {
		t.Fatalf("edited message in a page = %+v", ms[0])
	}
	ms, err = s.MessagesBefore(ctx, empty.ID, 0, 10)
	check("MessagesBefore(empty room)", ms, err)
	_, err = s.MessagesBefore(ctx, 999999, 0, 10)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.MessagesAfter(ctx, 999999, 0, 10)
	wantErr(t, err, store.ErrNotFound)
}

// appendAll runs senders goroutines that each append perSender messages to
// rooms[i % len(rooms)] and returns what each call returned, per room.
func appendAll(t *testing.T, s store.Store, author int64, rooms []int64, senders, perSender int) map[int64][]store.Event {
	t.Helper()
	ctx := ctxT(t)
	var (
		mu  sync.Mutex
		got = map[int64][]store.Event{}
		wg  sync.WaitGroup
	)
	errs := make(chan error, senders)
	for g := range senders {
		wg.Go(func() {
			for i := range perSender {
				room := rooms[(g+i)%len(rooms)]
				ev, err := s.AppendEvent(ctx, room, store.Event{Kind: store.EventMessage, UserID: author, Body: fmt.Sprintf("g%d-%d", g, i)})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				got[room] = append(got[room], ev)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return got
}

// checkGapFree checks that the returned seqs of each room are exactly
// 1..n and that the log, read back, holds the same events in seq order.
func checkGapFree(t *testing.T, s store.Store, got map[int64][]store.Event) {
	t.Helper()
	ctx := ctxT(t)
	for room, evs := range got {
		bySeq := map[uint64]store.Event{}
		for _, ev := range evs {
			if _, dup := bySeq[ev.Seq]; dup {
				t.Fatalf("room %d: seq %d returned twice", room, ev.Seq)
			}
			bySeq[ev.Seq] = ev
		}
		log := ok(s.EventsAfter(ctx, room, 0, store.MaxLimit)).must(t)
		if len(log) != len(evs) {
			t.Fatalf("room %d: log has %d events, callers got %d", room, len(log), len(evs))
		}
		for i, e := range log {
			want := bySeq[uint64(i+1)]
			if e.Seq != uint64(i+1) || e.Body != want.Body {
				t.Fatalf("room %d: log[%d] = seq %d %q, want seq %d %q", room, i, e.Seq, e.Body, i+1, want.Body)
			}
		}
		if pos := ok(s.RoomPosition(ctx, room)).must(t); pos.Seq != uint64(len(evs)) {
			t.Fatalf("room %d: position %d, want %d", room, pos.Seq, len(evs))
		}
	}
}

func testConcurrentManyRooms(t *testing.T, h Harness) {
	s := open(t, h)
	alice := mkUser(t, s, "alice")
	var rooms []int64
	for i := range 10 {
		rooms = append(rooms, mkRoom(t, s, fmt.Sprint("room", i), store.RoomPublic, alice.ID).ID)
	}
	got := appendAll(t, s, alice.ID, rooms, 50, 20)
	checkGapFree(t, s, got)
}

func testConcurrentOneRoom(t *testing.T, h Harness) {
	s, ctx := open(t, h), ctxT(t)
	alice := mkUser(t, s, "alice")
	room := mkRoom(t, s, "hot", store.RoomPublic, alice.ID)

	// Rejected events race with good ones; they must not leave gaps.
	stop := make(chan struct{})
	var bad sync.WaitGroup
	for range 5 {
		bad.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := s.AppendEvent(ctx, room.ID, store.Event{Kind: store.EventEdit, UserID: alice.ID, Target: 1 << 40, Body: "x"})
				if !errors.Is(err, store.ErrNotFound) {
					t.Errorf("edit of a missing message: %v", err)
					return
				}
			}
		})
	}
	got := appendAll(t, s, alice.ID, []int64{room.ID}, 50, 20)
	close(stop)
	bad.Wait()
	if n := len(got[room.ID]); n != 1000 {
		t.Fatalf("%d events appended, want 1000", n)
	}
	checkGapFree(t, s, got)
}

func testContextAndClose(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx := ctxT(t)
	alice := mkUser(t, s, "alice")
	room := mkRoom(t, s, "general", store.RoomPublic, alice.ID)

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, err := s.AppendEvent(canceled, room.ID, store.Event{Kind: store.EventMessage, UserID: alice.ID, Body: "late"})
	wantErr(t, err, context.Canceled)
	if pos := ok(s.RoomPosition(ctx, room.ID)).must(t); pos.Seq != 0 {
		t.Fatalf("a canceled append took seq %d", pos.Seq)
	}

	// Appends racing with Close either commit or fail with ErrClosed.
	var wg sync.WaitGroup
	results := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := s.AppendEvent(ctx, room.ID, store.Event{Kind: store.EventMessage, UserID: alice.ID, Body: "x"})
			results <- err
		})
	}
	noErr(t, s.Close())
	wg.Wait()
	close(results)
	for err := range results {
		if err != nil && !errors.Is(err, store.ErrClosed) {
			t.Fatalf("append racing Close: %v", err)
		}
	}
	noErr(t, s.Close()) // twice is fine
	_, err = s.AppendEvent(ctx, room.ID, store.Event{Kind: store.EventMessage, UserID: alice.ID, Body: "after"})
	wantErr(t, err, store.ErrClosed)
	_, err = s.GetRoom(ctx, room.ID)
	wantErr(t, err, store.ErrClosed)
}

func testDurability(t *testing.T, h Harness) {
	if h.Reopen == nil {
		t.Skip("no Reopen in the harness")
	}
	s := h.Open(t)
	alice := mkUser(t, s, "alice")
	room := mkRoom(t, s, "general", store.RoomPublic, alice.ID)
	got := appendAll(t, s, alice.ID, []int64{room.ID}, 8, 25)
	msg := post(t, s, room.ID, alice.ID, "keep me")

	s = h.Reopen(t, s)
	t.Cleanup(func() { s.Close() })
	ctx := ctxT(t)
	got[room.ID] = append(got[room.ID], msg)
	checkGapFree(t, s, got)
	pos := ok(s.RoomPosition(ctx, room.ID)).must(t)
	if pos.Epoch != room.Epoch {
		t.Fatalf("epoch changed across restart: %q -> %q", room.Epoch, pos.Epoch)
	}
	if m := ok(s.GetMessage(ctx, room.ID, msg.Seq)).must(t); m.Body != "keep me" {
		t.Fatalf("message after restart = %+v", m)
	}
	if next := post(t, s, room.ID, alice.ID, "after restart"); next.Seq != pos.Seq+1 {
		t.Fatalf("first seq after restart = %d, want %d", next.Seq, pos.Seq+1)
	}
	ok(s.GetUserByName(ctx, "alice")).must(t)
}
