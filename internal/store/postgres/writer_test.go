package postgres

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sori-dev/sori/internal/store"
)

func TestTokensFoldCaseAndDiacritics(t *testing.T) {
	got := tokens("Crème BRÛLÉE, naïve co-op 42x über_alles")
	want := []string{"creme", "brulee", "naive", "co", "op", "42x", "uber", "alles"}
	if !slices.Equal(got, want) {
		t.Fatalf("tokens = %q, want %q", got, want)
	}
	if got := lexemes("a b a"); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("lexemes dedupe: %q", got)
	}
	if got := tokens(fmt.Sprintf("%0*d ok", maxLexeme+1, 7)); !slices.Equal(got, []string{"ok"}) {
		t.Fatalf("an over-long token is kept: %q", got)
	}
}

func TestTSQueryIsAlwaysQuotedLexemes(t *testing.T) {
	cases := map[string]string{
		"brown fox":     `'brown':* & 'fox':*`,
		"qui*":          `'qui':*`,
		"Éclair*":       `'eclair':*`,
		"col:brown":     `'col' & 'brown':*`,
		"brown & !fox":  `'brown':* & 'fox':*`,
		`it's`:          `'it' & 's':*`,
		"a-b*":          `'a' & 'b':*`,
		"*** ' \\ ( ) ": ``,
		"":              ``,
	}
	for in, want := range cases {
		if got := tsQuery(in); got != want {
			t.Errorf("tsQuery(%q) = %s, want %s", in, got, want)
		}
	}
}

// A batch holding a message and later events about it is checked against
// its own earlier events: the edit, reaction and delete find the message
// written in the same transaction, and what follows the delete is refused.
func TestBatchSeesItsOwnEvents(t *testing.T) {
	s := openDSN(t, newSchema(t), Options{})
	defer s.Close()
	ctx := context.Background()
	alice, err := s.CreateUser(ctx, store.User{Username: "alice", PasswordHash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	room, err := s.CreateRoom(ctx, store.Room{Name: "r", Kind: store.RoomPublic, CreatedBy: alice.ID})
	if err != nil {
		t.Fatal(err)
	}
	evs := []store.Event{
		{Kind: store.EventMessage, UserID: alice.ID, Body: "first draft"},             // 1
		{Kind: store.EventEdit, UserID: alice.ID, Target: 1, Body: "second"},          // 2
		{Kind: store.EventReactionAdd, UserID: alice.ID, Target: 1, Emoji: "x"},       // 3
		{Kind: store.EventReactionAdd, UserID: alice.ID, Target: 1, Emoji: "x"},       // conflict
		{Kind: store.EventMessage, UserID: alice.ID, Body: "reply", ReplyTo: 1},       // 4
		{Kind: store.EventDelete, UserID: alice.ID, Target: 1},                        // 5
		{Kind: store.EventEdit, UserID: alice.ID, Target: 1, Body: "too late"},        // conflict
		{Kind: store.EventReactionRemove, UserID: alice.ID, Target: 4, Emoji: "none"}, // not found
		{Kind: store.EventMessage, UserID: 999999, Body: "ghost"},                     // not found
	}
	var batch []*appendReq
	for _, ev := range evs {
		ev, err := store.NormalizeEvent(room.ID, ev)
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, &appendReq{ctx: ctx, ev: ev})
	}
	results := s.commitBatch(batch) // the writer is idle: nothing else appends
	wantSeq := []uint64{1, 2, 3, 0, 4, 5, 0, 0, 0}
	wantErr := []error{nil, nil, nil, store.ErrConflict, nil, nil, store.ErrConflict, store.ErrNotFound, store.ErrNotFound}
	for i, res := range results {
		if res.ev.Seq != wantSeq[i] || !errors.Is(res.err, wantErr[i]) || (wantErr[i] == nil) != (res.err == nil) {
			t.Errorf("event %d (%s): seq %d err %v, want seq %d err %v", i, evs[i].Kind, res.ev.Seq, res.err, wantSeq[i], wantErr[i])
		}
	}
	if s.batches.Load() != 1 {
		t.Fatalf("%d transactions, want 1", s.batches.Load())
	}
	log, err := s.EventsAfter(ctx, room.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 5 || log[0].Body != "" || log[1].Body != "" || log[3].Body != "reply" {
		t.Fatalf("log = %+v, want 5 events with the deleted message's text scrubbed", log)
	}
	m, err := s.GetMessage(ctx, room.ID, 1)
	if err != nil || !m.Deleted || m.Reactions != nil {
		t.Fatalf("deleted message = %+v, %v", m, err)
	}
	if ms, err := s.SearchMessages(ctx, []int64{room.ID}, "second", 10); err != nil || len(ms) != 0 {
		t.Fatalf("search finds the deleted message: %+v %v", ms, err)
	}
}

// A batch that fails at COMMIT on one node uses no seq, while two other
// nodes keep appending to the same room.
func TestFailedBatchOnOneNodeLeavesNoGap(t *testing.T) {
	dsn := newSchema(t)
	a, b, c := openDSN(t, dsn, Options{}), openDSN(t, dsn, Options{}), openDSN(t, dsn, Options{})
	defer a.Close()
	defer b.Close()
	defer c.Close()
	ctx := context.Background()
	alice, err := a.CreateUser(ctx, store.User{Username: "alice", PasswordHash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	room, err := a.CreateRoom(ctx, store.Room{Name: "hot", Kind: store.RoomPublic, CreatedBy: alice.ID})
	if err != nil {
		t.Fatal(err)
	}
	// Each node learns alice first, so that every batch below takes the
	// one-trip path and the injected failure hits one.
	var mu sync.Mutex
	var seqs []uint64
	for _, node := range []*Store{a, b, c} {
		ev, err := node.AppendEvent(ctx, room.ID, store.Event{Kind: store.EventMessage, UserID: alice.ID, Body: "hello"})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ev.Seq)
	}
	var failed sync.Once
	var failures int
	b.failBatch = func(int) error { // only b's writer goroutine calls it
		err := errors.New("injected commit failure")
		var hit bool
		failed.Do(func() { hit = true })
		if hit {
			failures++
			return err
		}
		return nil
	}
	var bErrs int
	var wg sync.WaitGroup
	for i, node := range []*Store{a, b, c, a, b, c} {
		wg.Go(func() {
			for j := range 50 {
				ev, err := node.AppendEvent(ctx, room.ID, store.Event{Kind: store.EventMessage, UserID: alice.ID, Body: fmt.Sprint(i, "-", j)})
				mu.Lock()
				if err != nil {
					if node != b {
						t.Errorf("append on a healthy node: %v", err)
					}
					bErrs++
				} else {
					seqs = append(seqs, ev.Seq)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if bErrs == 0 {
		t.Fatal("the injected failure reached no caller")
	}
	if b.oneTripBatches.Load() == 0 {
		t.Fatal("no one-trip batch on the failing node")
	}
	slices.Sort(seqs)
	for i, q := range seqs {
		if q != uint64(i+1) {
			t.Fatalf("seqs have a gap or repeat at %d: got %d (of %d acknowledged)", i, q, len(seqs))
		}
	}
	pos, err := c.RoomPosition(ctx, room.ID)
	if err != nil || pos.Seq != uint64(len(seqs)) {
		t.Fatalf("position %+v %v, want %d", pos, err, len(seqs))
	}
}

// The one-round-trip path gives every caller what the two-trip path gives
// and leaves the same log, messages, mentions, heads and search index: one
// batch of plain messages over two rooms and an unknown one, with mentions
// and @room; then a batch with a new client id and a stored one (which goes
// again in two trips), then one with a new client id; run through both
// paths on two identical schemas, with the expected seqs checked as well.
func TestOneTripMatchesTwoTrips(t *testing.T) {
	type outcome struct {
		results []appendResult
		log     map[int64][]store.Event
		heads   map[int64]uint64
		found   []store.Message
		ments   [][3]int64
	}
	at := time.Date(2026, 11, 30, 13, 0, 0, 0, time.UTC)
	run := func(opts Options) (outcome, *Store) {
		s := openDSN(t, newSchema(t), opts)
		t.Cleanup(func() { s.Close() })
		ctx := context.Background()
		alice, err := s.CreateUser(ctx, store.User{Username: "alice", PasswordHash: "h"})
		if err != nil {
			t.Fatal(err)
		}
		bob, err := s.CreateUser(ctx, store.User{Username: "bob", PasswordHash: "h"})
		if err != nil {
			t.Fatal(err)
		}
		var rooms [2]int64
		for i := range rooms {
			r, err := s.CreateRoom(ctx, store.Room{Name: fmt.Sprint("r", i), Kind: store.RoomPublic, CreatedBy: alice.ID})
			if err != nil {
				t.Fatal(err)
			}
			rooms[i] = r.ID
		}
		a, b, missing := rooms[0], rooms[1], rooms[1]+1000
		// Stored before the batch (and so alice is a known user).
		if _, err := s.AppendEvent(ctx, a, store.Event{Kind: store.EventMessage, UserID: alice.ID, Body: "stored first",
			ClientID: "k1", Mentions: []int64{bob.ID}, CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
		msg := func(room int64, body string, mentions []int64, all bool) store.Event {
			return store.Event{RoomID: room, Kind: store.EventMessage, UserID: alice.ID, Body: body,
				Mentions: mentions, MentionRoom: all, CreatedAt: at.Add(time.Second)}
		}
		evs := []store.Event{
			msg(a, "hello world", []int64{bob.ID}, false), // a 2
			msg(b, "first in b", nil, false),              // b 1
			msg(missing, "lost", nil, false),              // no such room
			msg(a, "second in a", []int64{bob.ID}, false), // a 3
			msg(b, "everyone", nil, true),                 // b 2
			msg(missing, "lost again", nil, false),        // no such room
			msg(a, "third in a", nil, false),              // a 4
		}
		withKey := func(ev store.Event, key string) store.Event { ev.ClientID = key; return ev }
		batches := [][]store.Event{evs, {
			withKey(msg(a, "new key", nil, false), "k9"), // a 5
			withKey(msg(a, "a retry", nil, false), "k1"), // stored: the batch goes again in two trips
		}, {
			withKey(msg(b, "new key in b", nil, false), "k10"), // b 3
		}}
		var o outcome
		for _, evs := range batches {
			var batch []*appendReq
			for _, ev := range evs {
				ev, err := store.NormalizeEvent(ev.RoomID, ev)
				if err != nil {
					t.Fatal(err)
				}
				batch = append(batch, &appendReq{ctx: ctx, ev: ev})
			}
			o.results = append(o.results, s.commitBatch(batch)...) // the writer is idle: nothing else appends
		}
		o.log, o.heads = map[int64][]store.Event{}, map[int64]uint64{}
		for _, r := range []int64{a, b} {
			if o.log[r], err = s.EventsAfter(ctx, r, 0, 0); err != nil {
				t.Fatal(err)
			}
			pos, err := s.RoomPosition(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			o.heads[r] = pos.Seq
		}
		if o.found, err = s.SearchMessages(ctx, []int64{a, b}, "hello", 10); err != nil {
			t.Fatal(err)
		}
		rows, err := s.pool.Query(ctx, `SELECT user_id, room_id, seq FROM mentions ORDER BY room_id, seq, user_id`)
		if err != nil {
			t.Fatal(err)
		}
		var m [3]int64
		if _, err := pgx.ForEachRow(rows, []any{&m[0], &m[1], &m[2]}, func() error {
			o.ments = append(o.ments, m)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return o, s
	}
	one, oneStore := run(Options{})
	two, twoStore := run(Options{twoTrips: true})
	if n := oneStore.oneTripBatches.Load(); n != 2 {
		t.Fatalf("%d one-trip batches, want 2 (the first append is from an unknown user, the retry of k1 goes again in two trips)", n)
	}
	if n := twoStore.oneTripBatches.Load(); n != 0 {
		t.Fatalf("two-trip store took the one-trip path %d times", n)
	}
	wantSeq := []uint64{2, 1, 0, 3, 2, 0, 4, 5, 1, 3}
	for i, r := range one.results {
		o := two.results[i]
		if (r.err == nil) != (o.err == nil) || (r.err != nil && !errors.Is(r.err, store.ErrNotFound)) || (o.err != nil && !errors.Is(o.err, store.ErrNotFound)) {
			t.Errorf("event %d: one trip err %v, two trips err %v", i, r.err, o.err)
		}
		if !reflect.DeepEqual(r.ev, o.ev) {
			t.Errorf("event %d: one trip %+v, two trips %+v", i, r.ev, o.ev)
		}
		if r.ev.Seq != wantSeq[i] || (wantSeq[i] == 0) != (r.err != nil) || r.ev.Duplicate != (i == 8) {
			t.Errorf("event %d: seq %d duplicate %v err %v, want seq %d", i, r.ev.Seq, r.ev.Duplicate, r.err, wantSeq[i])
		}
	}
	if d := one.results[8].ev; d.Body != "stored first" || len(d.Mentions) != 1 {
		t.Errorf("the retry of a stored client id answers %+v, want the stored message", d)
	}
	if !reflect.DeepEqual(one.log, two.log) || !reflect.DeepEqual(one.heads, two.heads) || !reflect.DeepEqual(one.ments, two.ments) {
		t.Errorf("stored state differs:\none trip  %+v %v %v\ntwo trips %+v %v %v", one.log, one.heads, one.ments, two.log, two.heads, two.ments)
	}
	if len(one.found) != 1 || len(two.found) != 1 || one.found[0].Seq != 2 || len(one.ments) != 3 {
		t.Errorf("search found %+v / %+v, mentions %v", one.found, two.found, one.ments)
	}
}

// Repeated client ids are found through the messages_client index.
// It is partial (non-empty client ids), so a query may use it only by
// requiring a non-empty client id of messages itself; without that the
// planner scanned the whole table for every batch with a client id.
// Sequential scans are priced out so that the plan shows whether the index
// can be used at all (else a scan of the room's rows by primary key is
// what remains).
func TestClientIDReadsUseTheIndex(t *testing.T) {
	s := openDSN(t, newSchema(t), Options{})
	defer s.Close()
	ctx := context.Background()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) // EXPLAIN without ANALYZE writes nothing; this also drops the setting
	if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	rows, err := tx.Query(ctx, "EXPLAIN "+clientIDsSQL, []int64{1}, []int64{1}, []string{"k"})
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if plan := strings.Join(lines, "\n"); !strings.Contains(plan, "Index Scan using messages_client on messages") {
		t.Errorf("the client id read does not use messages_client:\n%s", plan)
	}
}
