package chat

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sori-dev/sori/internal/hub"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/store"
	"github.com/sori-dev/sori/internal/store/postgres"
	"github.com/sori-dev/sori/internal/store/postgres/pgtest"
	"github.com/sori-dev/sori/internal/store/sqlite"
)

// wedgedStore is a real store and a way to block its writes from outside
// the process, as another program holding a lock would.
type wedgedStore struct {
	st store.Store
	// lock blocks every append to room until the returned release runs.
	lock func(t *testing.T, room int64) (release func())
}

// sqliteWedge: another connection to the database file holds SQLite's
// write lock (BEGIN IMMEDIATE), as `sori user add` or a backup tool can.
func sqliteWedge(t *testing.T) wedgedStore {
	path := filepath.Join(t.TempDir(), "sori.db")
	st, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return wedgedStore{st: st, lock: func(t *testing.T, _ int64) func() {
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
			t.Fatal(err)
		}
		return func() {
			_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
			_ = conn.Close()
			_ = db.Close()
		}
	}}
}

// postgresWedge: a transaction of another client holds the room's row
// lock (SELECT … FOR UPDATE), which every append to the room must take.
func postgresWedge(t *testing.T) wedgedStore {
	dsn := pgtest.Schema(t)
	st, err := postgres.Open(context.Background(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return wedgedStore{st: st, lock: func(t *testing.T, room int64) func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `SELECT 1 FROM rooms WHERE id = $1 FOR UPDATE`, room); err != nil {
			t.Fatal(err)
		}
		return func() {
			_ = tx.Rollback(ctx)
			_ = conn.Close(ctx)
		}
	}}
}

// pubRecorder is a room subscriber that hands each publication's offset
// and text to the test as it arrives.
type pubRecorder struct{ got chan string }

func (r *pubRecorder) Info() protocol.ClientInfo { return protocol.ClientInfo{User: "x", Client: "c"} }
func (r *pubRecorder) Deliver(f []byte, _ string, _ int64) {
	var p struct {
		Push   string    `json:"push"`
		Offset uint64    `json:"offset"`
		Data   EventData `json:"data"`
	}
	if json.Unmarshal(f, &p) == nil && p.Push == "pub" {
		r.got <- fmt.Sprintf("%d:%s", p.Offset, p.Data.Text)
	}
}

// A store whose writes another client has blocked: a post answers 122
// ("try again", with the same client_id) once AppendTimeout or the
// caller's deadline has passed, instead of waiting as long as the lock is
// held. Nothing acknowledged is lost; once the lock is gone, the retry
// with the same client_id leaves the message in the room exactly once,
// and a subscriber gets every message once and in order, the later ones
// too (a commit after the deadline would otherwise stall the room's live
// delivery on a single node).
func TestAppendAnswers122WhileTheStoreIsLocked(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) wedgedStore
	}{{"SQLite", sqliteWedge}, {"PostgreSQL", postgresWedge}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ws := tc.open(t)
			h, err := hub.New(hub.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(h.Close)
			svc, err := New(Config{Store: ws.st, Hub: h, DataDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			h.SetBackend(Namespace, svc.Backend())
			ctx := context.Background()
			alice := must(ws.st.CreateUser(ctx, store.User{Username: "alice"}))(t)
			room := must(svc.CreateRoom(ctx, alice, NewRoom{Name: "lobby", Kind: store.RoomPublic}))(t)
			sub := &pubRecorder{got: make(chan string, 16)}
			if err := h.Subscribe(ctx, RoomChannel(room.ID), sub, hub.SubscribeOptions{}, func(protocol.SubscribeResult) {}); err != nil {
				t.Fatal(err)
			}
			post := func(ctx context.Context, text, clientID string) (Appended, error) {
				return svc.PostMessage(ctx, alice, room.ID, NewMessage{Text: text, ClientID: clientID})
			}
			if _, err := post(ctx, "before", "c0"); err != nil {
				t.Fatal(err)
			}

			release := ws.lock(t, room.ID)
			// Bounded by AppendTimeout (the caller sets no deadline, as a
			// REST request does not) …
			svc.cfg.AppendTimeout = 200 * time.Millisecond
			_, err = post(ctx, "during", "c1")
			wantCode(t, "post while the store is locked", err, protocol.ErrStoreDown.Code)
			if !strings.Contains(err.Error(), "client_id") {
				t.Fatalf("the 122 does not say to retry with the same client_id: %v", err)
			}
			// … and by the caller's deadline (a real-time publish has one).
			svc.cfg.AppendTimeout = DefaultAppendTimeout
			short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			_, err = post(short, "during", "c1")
			cancel()
			wantCode(t, "post with a deadline while the store is locked", err, protocol.ErrStoreDown.Code)
			release()

			// Whether or not a timed-out attempt committed after all, the
			// retry leaves it once.
			first := must(post(ctx, "during", "c1"))(t)
			again := must(post(ctx, "during", "c1"))(t)
			if !again.Duplicate || again.Seq != first.Seq || first.Seq != 2 {
				t.Fatalf("retries = %+v then %+v; want seq 2, the second a duplicate", first, again)
			}
			if _, err := post(ctx, "after", "c2"); err != nil {
				t.Fatal(err)
			}
			msgs := must(svc.Messages(ctx, alice, room.ID, Page{Forward: true}))(t)
			var texts []string
			for _, m := range msgs {
				texts = append(texts, m.Body)
			}
			if strings.Join(texts, ",") != "before,during,after" {
				t.Fatalf("room holds %q, want before, during, after once each", texts)
			}
			want := []string{"1:before", "2:during", "3:after"}
			for _, w := range want {
				select {
				case got := <-sub.got:
					if got != w {
						t.Fatalf("subscriber got %q, want %q (all: %v)", got, w, want)
					}
				case <-time.After(30 * time.Second): // only ends a broken test
					t.Fatalf("subscriber never got %q", w)
				}
			}
			select {
			case got := <-sub.got:
				t.Fatalf("subscriber got %q more", got)
			default:
			}
		})
	}
}
