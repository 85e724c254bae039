package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/sori-dev/sori/internal/store"
)

// TestUpgradeKeepsEventLog: migration 0003 rebuilds the events table (to
// add the pin kinds); a database written at version 2 keeps its log, and
// its messages take the new fields' defaults.
func TestUpgradeKeepsEventLog(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), DefaultFileName)
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:2] {
		if _, err := db.Exec(m.SQL); err != nil {
			t.Fatal(m.Name, err)
		}
		if _, err := db.Exec(`INSERT INTO schema_migrations VALUES (?, ?, 0)`, m.Version, m.Name); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`INSERT INTO users (id, username, username_key, password_hash, created_at) VALUES (1, 'alice', 'alice', 'h', 1)`,
		`INSERT INTO rooms (id, name, name_key, kind, created_by, created_at, epoch) VALUES (1, 'r', 'r', 'public', 1, 1, 'e')`,
		`INSERT INTO events (room_id, seq, kind, user_id, body, created_at) VALUES (1, 1, 'message', 1, 'old text', 5)`,
		`INSERT INTO messages (room_id, seq, author_id, body, created_at) VALUES (1, 1, 1, 'old text', 5)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(q, err)
		}
	}
	db.Close()

	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evs, err := s.EventsAfter(ctx, 1, 0, 10)
	if err != nil || len(evs) != 1 || evs[0].Body != "old text" || evs[0].ClientID != "" || evs[0].Thread != 0 {
		t.Fatalf("events after upgrade = %+v, %v", evs, err)
	}
	pin, err := s.AppendEvent(ctx, 1, store.Event{Kind: store.EventPin, UserID: 1, Target: 1})
	if err != nil || pin.Seq != 2 {
		t.Fatalf("pin after upgrade = %+v, %v", pin, err)
	}
	m, err := s.GetMessage(ctx, 1, 1)
	if err != nil || m.Body != "old text" || m.ThreadReplies != 0 {
		t.Fatalf("message after upgrade = %+v, %v", m, err)
	}
}
