package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/store"
	"github.com/sori-dev/sori/internal/store/storetest"
)

func openTemp(t *testing.T) store.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), DefaultFileName)
	// Registered first, so it runs after the suite has closed the store.
	t.Cleanup(func() { checkIntegrity(t, path) })
	return openAt(t, path, Options{})
}

// checkIntegrity checks a closed database file: SQLite's own structure, the
// foreign keys, and that the full-text index matches the messages.
func checkIntegrity(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil || res != "ok" {
		t.Errorf("integrity_check: %q %v", res, err)
	}
	rows, err := db.Query(`PRAGMA foreign_key_check`)
	if err != nil {
		t.Fatal(err)
	}
	if rows.Next() {
		t.Error("foreign_key_check found violations")
	}
	rows.Close()
	if _, err := db.Exec(`INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)`); err != nil {
		t.Errorf("FTS integrity check: %v", err)
	}
}

func openAt(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func reopen(t *testing.T, s store.Store) store.Store {
	t.Helper()
	path := s.(*Store).Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return openAt(t, path, Options{})
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{Open: openTemp, Reopen: reopen})
}

// The suite again with one transaction per event, the benchmark baseline.
func TestConformanceNoBatching(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store {
			return openAt(t, filepath.Join(t.TempDir(), DefaultFileName), Options{MaxBatch: 1})
		},
	})
}

func TestPragmas(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), DefaultFileName), Options{})
	defer s.Close()
	ctx := context.Background()
	for _, db := range []struct {
		name string
		q    querier
	}{{"writer", s.w}, {"reader", s.r}} {
		var mode string
		var fk, sync, busy int
		if err := db.q.QueryRowContext(ctx, `SELECT (SELECT * FROM pragma_journal_mode), (SELECT * FROM pragma_foreign_keys),
			(SELECT * FROM pragma_synchronous), (SELECT * FROM pragma_busy_timeout)`).Scan(&mode, &fk, &sync, &busy); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || fk != 1 || sync != 1 || busy != 5000 {
			t.Errorf("%s: journal_mode=%s foreign_keys=%d synchronous=%d busy_timeout=%d", db.name, mode, fk, sync, busy)
		}
	}
	if _, err := s.r.ExecContext(ctx, `DELETE FROM users`); err == nil {
		t.Error("the read pool accepted a write")
	}
}

func TestMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultFileName)
	s := openAt(t, path, Options{})
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	if err := s.r.QueryRow(`SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil || v != len(ms) {
		t.Fatalf("schema version = %d (%v), want %d", v, err, len(ms))
	}
	// A database from a newer binary is refused rather than misread.
	if _, err := s.w.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future.sql', 0)`, len(ms)+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s2, err := Open(context.Background(), path, Options{}); err == nil {
		s2.Close()
		t.Fatal("opened a database with a newer schema")
	}
}

// A batch that fails as a whole fails every caller in it and uses no seq.
func TestFailedBatchAssignsNoSeq(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), DefaultFileName), Options{})
	defer s.Close()
	ctx := context.Background()
	u, err := s.CreateUser(ctx, store.User{Username: "alice", PasswordHash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	room, err := s.CreateRoom(ctx, store.Room{Name: "r", Kind: store.RoomPublic, CreatedBy: u.ID})
	if err != nil {
		t.Fatal(err)
	}
	msg := store.Event{Kind: store.EventMessage, UserID: u.ID, Body: "x"}
	if _, err := s.AppendEvent(ctx, room.ID, msg); err != nil {
		t.Fatal(err)
	}

	// Hold the writer connection so that the next appends queue up and
	// commit as one batch, which the hook then fails.
	conn, err := s.w.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk on fire")
	failed := false
	s.failBatch = func(size int) error {
		// The first batch may be just the one request the writer took before
		// it blocked on the held connection; fail the first real batch, which
		// holds everyone who queued meanwhile (or all of them, if the writer
		// started late).
		if !failed && size >= 2 {
			failed = true
			return boom
		}
		return nil
	}
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = s.AppendEvent(ctx, room.ID, msg) })
	}
	// Let every caller queue up behind the held connection, so that at least
	// one batch has two or more. However many make it into the first batch,
	// all of them must fail and none take a seq.
	waitAppendsParked(t, n)
	conn.Close()
	wg.Wait()
	nfailed := 0
	for _, err := range errs {
		if err != nil {
			if !errors.Is(err, boom) {
				t.Fatalf("failed append: %v, want the batch's error", err)
			}
			nfailed++
		}
	}
	t.Logf("%d of %d appends were in the failed batch", nfailed, n)
	if nfailed < 2 {
		t.Fatal("no append failed")
	}
	s.failBatch = nil
	pos, err := s.RoomPosition(ctx, room.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(1 + n - nfailed); pos.Seq != want {
		t.Fatalf("position after a failed batch = %d, want %d", pos.Seq, want)
	}
	ev, err := s.AppendEvent(ctx, room.ID, msg)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Seq != pos.Seq+1 {
		t.Fatalf("seq after a failed batch = %d, want %d", ev.Seq, pos.Seq+1)
	}
	evs, err := s.EventsAfter(ctx, room.ID, 0, store.MaxLimit)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range evs {
		if e.Seq != uint64(i+1) {
			t.Fatalf("log has a gap at %d: %+v", i, e)
		}
	}
}

// A message and its edit and delete in one batch leave the full-text index
// in step: the index changes are replayed in event order at the end.
func TestSearchIndexWithinOneBatch(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), DefaultFileName), Options{})
	defer s.Close()
	ctx := context.Background()
	u, err := s.CreateUser(ctx, store.User{Username: "alice", PasswordHash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.CreateRoom(ctx, store.Room{Name: "a", Kind: store.RoomPublic, CreatedBy: u.ID})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateRoom(ctx, store.Room{Name: "b", Kind: store.RoomPublic, CreatedBy: u.ID})
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	s.failBatch = func(size int) error { sizes = append(sizes, size); return nil }

	// Hold the writer's connection so that the first request blocks the
	// writer and the next ones queue, in order, for the second batch.
	conn, err := s.w.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	evs := []store.Event{
		{Kind: store.EventMessage, UserID: u.ID, Body: "blocker"}, // room b
		{Kind: store.EventMessage, UserID: u.ID, Body: "apple pie"},
		{Kind: store.EventEdit, UserID: u.ID, Target: 1, Body: "banana split"},
		{Kind: store.EventMessage, UserID: u.ID, Body: "cherry tart"},
		{Kind: store.EventEdit, UserID: u.ID, Target: 3, Body: "durian cake"},
		{Kind: store.EventDelete, UserID: u.ID, Target: 3},
	}
	var wg sync.WaitGroup
	errs := make([]error, len(evs))
	waits := s.w.Stats().WaitCount
	for i, ev := range evs {
		room := a.ID
		if i == 0 {
			room = b.ID
		}
		wg.Go(func() { _, errs[i] = s.AppendEvent(ctx, room, ev) })
		// Keep the queue in this order: each caller waits on the writer
		// before the next one starts (senders on a channel are served in
		// the order they blocked).
		waitAppendsParked(t, i+1)
		if i == 0 {
			// The writer took the blocker alone and now waits for the held
			// connection, so the rest cannot join the blocker's batch.
			waitFor(t, "the writer to wait for its connection", func() bool { return s.w.Stats().WaitCount > waits })
		}
	}
	conn.Close()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	s.failBatch = nil
	if len(sizes) != 2 || sizes[1] != len(evs)-1 {
		t.Errorf("batch sizes %v, want the blocker alone and then one batch of %d", sizes, len(evs)-1)
	}
	for q, want := range map[string]int{"apple": 0, "banana": 1, "cherry": 0, "durian": 0} {
		ms, err := s.SearchMessages(ctx, []int64{a.ID}, q, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != want {
			t.Errorf("search %q: %d results, want %d", q, len(ms), want)
		}
	}
	// The index agrees with its content table.
	if _, err := s.w.ExecContext(ctx, `INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)`); err != nil {
		t.Fatalf("FTS integrity check: %v", err)
	}
}

// waitAppendsParked waits until n goroutines started by the running test are
// blocked inside AppendEvent: queued on the writer's channel, or handed to the
// writer and waiting for their batch's result. A parked sender keeps its
// place in the channel's queue, so callers started one at a time, each
// waited for here, are taken by the writer in that order.
func waitAppendsParked(t *testing.T, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d callers to wait in AppendEvent", n), func() bool { return appendsParked(t) >= n })
}

// appendsParked counts, from a dump of every goroutine's stack, those blocked
// in a select inside AppendEvent and called from the running test's code.
func appendsParked(t *testing.T) int {
	buf := make([]byte, 1<<20)
	for {
		if m := runtime.Stack(buf, true); m < len(buf) {
			buf = buf[:m]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	caller := "sqlite." + t.Name() + "."
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, frames, _ := strings.Cut(g, "\n")
		if strings.Contains(header, "[select") && strings.Contains(frames, "sqlite.(*Store).AppendEvent(") && strings.Contains(frames, caller) {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds, failing the test if it never does.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
