package server_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/config"
	"github.com/sori-dev/sori/internal/store/sqlite"
)

// postMessage posts body to room over REST and returns the status, the
// decoded answer and the Retry-After header.
func postMessage(t *testing.T, ts *testServer, u chatUser, room int64, body map[string]any) (int, map[string]any, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	status, out, h := restDo(t, ts.URL, u.token, "POST", fmt.Sprintf("/api/v1/rooms/%d/messages", room), bytes.NewReader(b), "application/json")
	return status, out, h.Get("Retry-After")
}

// While another process holds the database's write lock, a post over REST
// is answered 503, error 122 with Retry-After once --append-timeout has
// passed, and a real-time publish error 122, instead of both waiting for
// the lock; once it is released, the retry with the same client_id is
// stored and delivered once.
func TestChatPostWhileTheStoreIsLocked(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.AppendTimeout = config.Duration(300 * time.Millisecond) })
	alice := signup(t, ts.URL, "alice")
	room := alice.call(t, ts, "POST", "/api/v1/rooms", map[string]any{"name": "team", "kind": "public"}, http.StatusCreated)
	id := int64(room["id"].(float64))
	ch := room["channel"].(string)
	cl := connectChat(t, ts, alice)
	cl.call(map[string]any{"op": "subscribe", "channel": ch})

	ctx := context.Background()
	db, err := sql.Open("sqlite", filepath.Join(ts.cfg.DataDir, sqlite.DefaultFileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	msg := map[string]any{"text": "during", "client_id": "c1"}
	status, out, retry := postMessage(t, ts, alice, id, msg)
	if status != http.StatusServiceUnavailable || errCode(out) != 122 || retry == "" {
		t.Fatalf("post while the store is locked: %d %v, Retry-After %q; want 503, error 122, Retry-After", status, out, retry)
	}
	cl.callErr(map[string]any{"op": "publish", "channel": ch, "data": map[string]any{"type": "message", "text": "during", "client_id": "c1"}}, 122)
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}

	status, out, _ = postMessage(t, ts, alice, id, msg)
	if status != http.StatusCreated || num(out["seq"]) != 1 {
		t.Fatalf("retry after the lock: %d %v; want 201 and seq 1 (nothing was stored while it was held)", status, out)
	}
	alice.call(t, ts, "POST", fmt.Sprintf("/api/v1/rooms/%d/messages", id), map[string]any{"text": "after"}, http.StatusCreated)
	for i, want := range []string{"during", "after"} {
		pub := cl.nextPub(ch)
		if num(pub["offset"]) != uint64(i+1) || pub["data"].(map[string]any)["text"] != want {
			t.Fatalf("publication %d: %v, want %q", i+1, pub, want)
		}
	}
}
