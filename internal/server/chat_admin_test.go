package server_test

import (
	"database/sql"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/sori-dev/sori/internal/config"
	"github.com/sori-dev/sori/internal/store/sqlite"
)

// TestServerAdminEndpoints: only server admins (is_admin) reach them;
// stats come from the /metrics registry; a password reset revokes the
// user's credentials.
func TestServerAdminEndpoints(t *testing.T) {
	var dir string
	ts := startServer(t, func(c *config.Config) { dir = c.DataDir })
	root, bob := signup(t, ts.URL, "root"), signup(t, ts.URL, "bob")
	// What `sori user add --admin` sets, written as it would be.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlite.DefaultFileName)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE users SET is_admin = 1 WHERE username = 'root'`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	paths := []struct{ method, path string }{
		{"GET", "/api/v1/admin/users"},
		{"GET", "/api/v1/admin/stats"},
		{"GET", "/api/v1/admin/users/bob/sessions"},
		{"DELETE", "/api/v1/admin/users/bob/sessions"},
		{"POST", "/api/v1/admin/users/bob/reset-password"},
	}
	for _, p := range paths {
		bob.call(t, ts, p.method, p.path, nil, http.StatusForbidden)
		restCall(t, ts.URL, "", p.method, p.path, nil, http.StatusUnauthorized)
	}

	bc := connectChat(t, ts, bob)
	bc.call(map[string]any{"op": "subscribe", "channel": "user:bob"})
	users := root.call(t, ts, "GET", "/api/v1/admin/users", nil, http.StatusOK)["users"].([]any)
	if len(users) != 2 || users[0].(map[string]any)["is_admin"] != true || users[1].(map[string]any)["online"] != true {
		t.Fatalf("users: %v", users)
	}
	st := root.call(t, ts, "GET", "/api/v1/admin/stats", nil, http.StatusOK)
	tr := st["transports"].(map[string]any)
	if num(st["connections"]) < 1 || num(tr["websocket"]) < 1 || st["channels"] == nil || st["slow_consumer_disconnects"] == nil {
		t.Fatalf("stats: %v", st)
	}
	ss := root.call(t, ts, "GET", "/api/v1/admin/users/bob/sessions", nil, http.StatusOK)
	if len(ss["sessions"].([]any)) != 1 || num(ss["connections"]) != 1 {
		t.Fatalf("bob's sessions: %v", ss)
	}
	root.call(t, ts, "GET", "/api/v1/admin/users/nobody/sessions", nil, http.StatusNotFound)

	pw := root.call(t, ts, "POST", "/api/v1/admin/users/bob/reset-password", nil, http.StatusOK)["password"].(string)
	bob.call(t, ts, "GET", "/api/v1/me", nil, http.StatusUnauthorized) // his token was revoked
	if code := bc.waitClose().Code; code != 4501 {
		t.Fatalf("bob's connection closed with %d, want 4501", code)
	}
	restCall(t, ts.URL, "", "POST", "/api/v1/auth/login", map[string]string{"username": "bob", "password": pw, "kind": "api"}, http.StatusOK)
}
