package server_test

import (
	"fmt"
	"net/http"
	"testing"
)

// TestPersonalEvents: what another user does to your rooms arrives at once
// on user:<you> (issue 10: the web app saw invitations only on its 20-s
// poll), and nothing arrives for what you did yourself.
func TestPersonalEvents(t *testing.T) {
	ts := startServer(t, nil)
	alice, bob := signup(t, ts.URL, "alice"), signup(t, ts.URL, "bob")
	bc := connectChat(t, ts, bob)
	bc.call(map[string]any{"op": "subscribe", "channel": "user:bob"})

	want := func(typ string, room int64, extra map[string]any) {
		t.Helper()
		data := bc.nextPub("user:bob")["data"].(map[string]any)
		if data["type"] != typ || int64(num(data["room"])) != room || data["by"] != "alice" {
			t.Fatalf("bob got %v, want %s in room %d by alice", data, typ, room)
		}
		for k, v := range extra {
			if data[k] != v {
				t.Fatalf("bob got %v, want %s=%v", data, k, v)
			}
		}
	}

	room := alice.call(t, ts, "POST", "/api/v1/rooms", map[string]any{"name": "team", "kind": "private"}, http.StatusCreated)
	id := int64(room["id"].(float64))
	base := fmt.Sprintf("/api/v1/rooms/%d", id)
	alice.call(t, ts, "POST", base+"/members", map[string]any{"username": "bob"}, http.StatusCreated)
	want("invited", id, map[string]any{"role": "member"})
	alice.call(t, ts, "PUT", base+"/members/bob/role", map[string]any{"role": "admin"}, http.StatusOK)
	want("role_changed", id, map[string]any{"role": "admin"})
	alice.call(t, ts, "PUT", base+"/members/bob/role", map[string]any{"role": "member"}, http.StatusOK)
	want("role_changed", id, map[string]any{"role": "member"})
	alice.call(t, ts, "DELETE", base+"/members/bob", nil, http.StatusOK)
	want("kicked", id, nil)

	// Bob's own actions publish nothing to him: the next event he sees is
	// alice's DM, not his join of her public room.
	pub := alice.call(t, ts, "POST", "/api/v1/rooms", map[string]any{"name": "open", "kind": "public"}, http.StatusCreated)
	bob.call(t, ts, "POST", fmt.Sprintf("/api/v1/rooms/%d/join", int64(pub["id"].(float64))), nil, http.StatusOK)
	dm := alice.call(t, ts, "POST", "/api/v1/direct/bob", nil, http.StatusCreated)
	want("dm_opened", int64(dm["id"].(float64)), nil)
	alice.call(t, ts, "POST", "/api/v1/direct/bob", nil, http.StatusOK) // exists: no second event
	alice.call(t, ts, "POST", base+"/members", map[string]any{"username": "bob"}, http.StatusCreated)
	want("invited", id, nil)

	// Someone else cannot read bob's events.
	ac := connectChat(t, ts, alice)
	ac.callErr(map[string]any{"op": "subscribe", "channel": "user:bob"}, 104)
}
