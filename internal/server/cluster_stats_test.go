package server_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5"
)

// /api/v1/admin/stats and the users list's "online" answer for the whole
// cluster: asked on node A, they count bob's connection on node B (A holds
// no connection), and "nodes" says how many nodes answered.
func TestAdminStatsAndOnlineAcrossNodes(t *testing.T) {
	nodes := clusterNodes(t, 2, nil)
	a, b := nodes[0], nodes[1]
	root, bob := signup(t, a.URL, "root"), signup(t, b.URL, "bob")
	signup(t, a.URL, "carol") // never connected
	// What `sori user add --admin` sets.
	ctx := context.Background()
	db, err := pgx.Connect(ctx, a.cfg.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `UPDATE users SET is_admin = true WHERE username = 'root'`); err != nil {
		t.Fatal(err)
	}
	db.Close(ctx)

	connectChat(t, b, bob)
	online := map[string]any{}
	for _, u := range root.call(t, a, "GET", "/api/v1/admin/users", nil, http.StatusOK)["users"].([]any) {
		m := u.(map[string]any)
		online[m["username"].(string)] = m["online"]
	}
	if online["bob"] != true || online["carol"] != false || online["root"] != false {
		t.Fatalf("online as node A sees it: %v, want only bob (connected to B)", online)
	}
	st := root.call(t, a, "GET", "/api/v1/admin/stats", nil, http.StatusOK)
	if num(st["nodes"]) != 2 || num(st["connections"]) != 1 || num(st["transports"].(map[string]any)["websocket"]) != 1 {
		t.Fatalf("stats on A: %v, want 2 nodes and bob's one WebSocket connection", st)
	}
	connectChat(t, a, root)
	st = root.call(t, b, "GET", "/api/v1/admin/stats", nil, http.StatusOK)
	if num(st["nodes"]) != 2 || num(st["connections"]) != 2 {
		t.Fatalf("stats on B: %v, want 2 nodes and 2 connections", st)
	}
}
