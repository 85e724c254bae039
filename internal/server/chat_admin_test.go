package server_test

import (
	"database/sql"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

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
	makeAdmin(t, dir, "root")

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

// makeAdmin sets is_admin on a user in the data dir's SQLite file, as
// `sori user add --admin` would have.
func makeAdmin(t *testing.T, dir, name string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlite.DefaultFileName)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE users SET is_admin = 1 WHERE username = ?`, name); err != nil {
		t.Fatal(err)
	}
}

// TestServerRegistrationAndInvites: --registration invite refuses a
// sign-up without an invite; an admin's invite works once; the admin can
// change the mode at run time; every endpoint is for admins only.
func TestServerRegistrationAndInvites(t *testing.T) {
	var dir string
	ts := startServer(t, func(c *config.Config) { dir = c.DataDir; c.Registration = "open" })
	root, bob := signup(t, ts.URL, "root"), signup(t, ts.URL, "bob")
	makeAdmin(t, dir, "root")

	for _, p := range []struct{ method, path string }{
		{"GET", "/api/v1/admin/registration"}, {"PUT", "/api/v1/admin/registration"},
		{"GET", "/api/v1/admin/invites"}, {"POST", "/api/v1/admin/invites"}, {"DELETE", "/api/v1/admin/invites/x"},
	} {
		bob.call(t, ts, p.method, p.path, map[string]any{}, http.StatusForbidden)
		restCall(t, ts.URL, "", p.method, p.path, map[string]any{}, http.StatusUnauthorized)
	}
	reg := func() map[string]any {
		return restCall(t, ts.URL, "", "GET", "/api/v1/auth/registration", nil, http.StatusOK)
	}
	if m := reg()["mode"]; m != "open" {
		t.Fatalf("mode %v, want open", m)
	}
	got := root.call(t, ts, "PUT", "/api/v1/admin/registration", map[string]any{"mode": "invite"}, http.StatusOK)
	if got["mode"] != "invite" || got["source"] != "admin" || got["configured"] != "open" {
		t.Fatalf("PUT registration: %v", got)
	}
	root.call(t, ts, "PUT", "/api/v1/admin/registration", map[string]any{"mode": "sideways"}, http.StatusBadRequest)
	if m := reg()["mode"]; m != "invite" {
		t.Fatalf("mode %v, want invite", m)
	}
	creds := func(name, invite string) map[string]string {
		return map[string]string{"username": name, "password": "password-" + name, "kind": "api", "invite": invite}
	}
	restCall(t, ts.URL, "", "POST", "/api/v1/auth/signup", creds("carol", ""), http.StatusForbidden)

	root.call(t, ts, "POST", "/api/v1/admin/invites", map[string]any{"ttl_seconds": 5}, http.StatusBadRequest)
	inv := root.call(t, ts, "POST", "/api/v1/admin/invites", map[string]any{"ttl_seconds": 3600, "uses": 1}, http.StatusCreated)
	code, _ := inv["code"].(string)
	if code == "" || inv["url"] != ts.URL+"/#/invite/"+code || inv["uses"] != 1.0 || inv["expires_at"] == nil {
		t.Fatalf("invite: %v", inv)
	}
	restCall(t, ts.URL, "", "POST", "/api/v1/auth/signup", creds("carol", code), http.StatusCreated)
	restCall(t, ts.URL, "", "POST", "/api/v1/auth/signup", creds("dave", code), http.StatusForbidden)
	list := root.call(t, ts, "GET", "/api/v1/admin/invites", nil, http.StatusOK)["invites"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["used"] != 1.0 || list[0].(map[string]any)["created_by"] != "root" || list[0].(map[string]any)["code"] != nil {
		t.Fatalf("invites: %v", list)
	}
	second := root.call(t, ts, "POST", "/api/v1/admin/invites", map[string]any{}, http.StatusCreated)
	root.call(t, ts, "DELETE", "/api/v1/admin/invites/"+second["id"].(string), nil, http.StatusOK)
	root.call(t, ts, "DELETE", "/api/v1/admin/invites/"+second["id"].(string), nil, http.StatusNotFound)
	restCall(t, ts.URL, "", "POST", "/api/v1/auth/signup", creds("erin", second["code"].(string)), http.StatusForbidden)

	root.call(t, ts, "PUT", "/api/v1/admin/registration", map[string]any{"mode": "closed"}, http.StatusOK)
	restCall(t, ts.URL, "", "POST", "/api/v1/auth/signup", creds("fay", ""), http.StatusForbidden)
	got = root.call(t, ts, "PUT", "/api/v1/admin/registration", map[string]any{"mode": ""}, http.StatusOK)
	if got["mode"] != "open" || got["source"] != "config" {
		t.Fatalf("cleared registration: %v", got)
	}
	restCall(t, ts.URL, "", "POST", "/api/v1/auth/signup", creds("fay", ""), http.StatusCreated)
}

// TestServerAdminDisableAndRooms: disabling a user ends their connection
// (4501), their tokens and sessions, and refuses their login and any fresh
// connection token, until enabled; an admin cannot disable themselves; the
// room list shows every room with its member count; one session can be
// ended. Non-admins get 403 and anonymous callers 401 everywhere.
func TestServerAdminDisableAndRooms(t *testing.T) {
	var dir string
	ts := startServer(t, func(c *config.Config) { dir = c.DataDir })
	root, bob, carol := signup(t, ts.URL, "root"), signup(t, ts.URL, "bob"), signup(t, ts.URL, "carol")
	makeAdmin(t, dir, "root")
	for _, p := range []struct{ method, path string }{
		{"POST", "/api/v1/admin/users/carol/disable"}, {"POST", "/api/v1/admin/users/carol/enable"},
		{"GET", "/api/v1/admin/rooms"}, {"DELETE", "/api/v1/admin/users/carol/sessions/x"},
	} {
		bob.call(t, ts, p.method, p.path, nil, http.StatusForbidden)
		restCall(t, ts.URL, "", p.method, p.path, nil, http.StatusUnauthorized)
	}

	room := bob.call(t, ts, "POST", "/api/v1/rooms", map[string]any{"name": "lobby", "kind": "public"}, http.StatusCreated)
	carol.call(t, ts, "POST", "/api/v1/rooms/"+strconv.Itoa(int(num(room["id"])))+"/join", nil, http.StatusOK)
	carol.call(t, ts, "POST", "/api/v1/direct/bob", nil, http.StatusCreated)
	rooms := root.call(t, ts, "GET", "/api/v1/admin/rooms?limit=1", nil, http.StatusOK)["rooms"].([]any)
	if len(rooms) != 1 || rooms[0].(map[string]any)["name"] != "lobby" || num(rooms[0].(map[string]any)["members"]) != 2 {
		t.Fatalf("rooms page 1: %v", rooms)
	}
	rooms = root.call(t, ts, "GET", "/api/v1/admin/rooms?after="+strconv.Itoa(int(num(room["id"]))), nil, http.StatusOK)["rooms"].([]any)
	if len(rooms) != 1 || rooms[0].(map[string]any)["kind"] != "direct" {
		t.Fatalf("rooms page 2: %v", rooms)
	}
	root.call(t, ts, "GET", "/api/v1/admin/rooms?limit=5000", nil, http.StatusBadRequest)

	// One session of carol's ends; her other token stays.
	second := restCall(t, ts.URL, "", "POST", "/api/v1/auth/login", map[string]string{"username": "carol", "password": "password-carol", "kind": "api"}, http.StatusOK)
	root.call(t, ts, "DELETE", "/api/v1/admin/users/carol/sessions/"+second["token_id"].(string), nil, http.StatusOK)
	root.call(t, ts, "DELETE", "/api/v1/admin/users/carol/sessions/"+second["token_id"].(string), nil, http.StatusNotFound)
	restCall(t, ts.URL, second["token"].(string), "GET", "/api/v1/me", nil, http.StatusUnauthorized)
	carol.call(t, ts, "GET", "/api/v1/me", nil, http.StatusOK)

	cc := connectChat(t, ts, carol)
	cc.call(map[string]any{"op": "subscribe", "channel": "user:carol"})
	root.call(t, ts, "POST", "/api/v1/admin/users/root/disable", nil, http.StatusConflict)
	root.call(t, ts, "POST", "/api/v1/admin/users/nobody/disable", nil, http.StatusNotFound)
	got := root.call(t, ts, "POST", "/api/v1/admin/users/carol/disable", nil, http.StatusOK)
	if got["disabled"] != true {
		t.Fatalf("disable: %v", got)
	}
	if code := cc.waitClose().Code; code != 4501 {
		t.Fatalf("carol's connection closed with %d, want 4501", code)
	}
	carol.call(t, ts, "GET", "/api/v1/me", nil, http.StatusUnauthorized)
	out := restCall(t, ts.URL, "", "POST", "/api/v1/auth/login", map[string]string{"username": "carol", "password": "password-carol", "kind": "api"}, http.StatusUnauthorized)
	if msg, _ := out["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "disabled") {
		t.Fatalf("disabled login: %v", out)
	}
	cl := dial(t, ts, nil)
	cl.callErr(map[string]any{"op": "connect", "token": ts.mint(t, "carol", time.Hour)}, 113)
	users := root.call(t, ts, "GET", "/api/v1/admin/users", nil, http.StatusOK)["users"].([]any)
	if u := users[2].(map[string]any); u["username"] != "carol" || u["disabled"] != true || u["online"] != false {
		t.Fatalf("users: %v", users)
	}

	root.call(t, ts, "POST", "/api/v1/admin/users/carol/enable", nil, http.StatusOK)
	carol.call(t, ts, "GET", "/api/v1/me", nil, http.StatusUnauthorized) // enabling gives no token back
	fresh := restCall(t, ts.URL, "", "POST", "/api/v1/auth/login", map[string]string{"username": "carol", "password": "password-carol", "kind": "api"}, http.StatusOK)
	restCall(t, ts.URL, fresh["token"].(string), "GET", "/api/v1/me", nil, http.StatusOK)
}
