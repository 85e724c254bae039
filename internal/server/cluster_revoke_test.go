package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// A revocation made through node A ("log out everywhere") holds on node B
// once the call returned: B refuses the old API token over REST (each
// request checks the shared store) and the old connection token at
// connect, and B has already closed the user's open connection with 4501
// (the revocation is pushed over the bus and acknowledged by every node
// before the call returns): a ping sent after the call returned gets no
// pong before the close (or cannot even be written). Without the push, B closes it only at its next
// store poll (up to 2 s later), and the pong comes first.
func TestRevocationReachesEveryNode(t *testing.T) {
	nodes := clusterNodes(t, 2, nil)
	a, b := nodes[0], nodes[1]
	alice := signup(t, a.URL, "alice")
	bob := signup(t, b.URL, "bob")
	tok := alice.call(t, b, "POST", "/api/v1/auth/connect-token", nil, http.StatusOK)["token"].(string)
	open := connectChat(t, b, alice)
	bobs := connectChat(t, b, bob)
	open.call(map[string]any{"op": "ping"})

	alice.call(t, a, "POST", "/api/v1/auth/logout-all", nil, http.StatusOK)

	// The ping's write fails when the close is already through: fine.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = open.c.Write(ctx, websocket.MessageText, []byte(`{"id":99,"op":"ping"}`))
	cancel()
	for closed := false; !closed; {
		select {
		case m, ok := <-open.frames:
			if _, reply := m["id"]; ok && reply {
				t.Fatalf("node B answered %v after the revocation returned on A, before closing the connection", m)
			}
			closed = !ok
		case <-time.After(10 * time.Second): // only ends a broken test
			t.Fatal("alice's connection on B was never closed")
		}
	}
	if ce := <-open.closed; ce.Code != 4501 {
		t.Fatalf("alice's connection on B closed with %d, want 4501", ce.Code)
	}
	restCall(t, b.URL, alice.token, "GET", "/api/v1/me", nil, http.StatusUnauthorized)
	again := dial(t, b, nil)
	again.callErr(map[string]any{"op": "connect", "token": tok}, 113)
	// Another user's connection on B is untouched.
	bobs.call(map[string]any{"op": "ping"})
}
