package server_test

import (
	"fmt"
	"net/http"
	"testing"
)

// The chat's membership cache is on in cluster mode: node B caches bob's
// membership at his first post, and a removal on node A reaches B's cache
// before the removal returns, so bob's next post on B is refused at once;
// added back on A, he posts on B again. (With the invalidation not sent,
// B's cache keeps answering "member" and the post after the removal is
// accepted.)
func TestMembershipCacheInvalidatedAcrossNodes(t *testing.T) {
	nodes := clusterNodes(t, 2, nil)
	a, b := nodes[0], nodes[1]
	alice, bob := signup(t, a.URL, "alice"), signup(t, b.URL, "bob")
	room := alice.call(t, a, "POST", "/api/v1/rooms", map[string]any{"name": "team", "kind": "private"}, http.StatusCreated)
	id := int64(room["id"].(float64))
	members := fmt.Sprintf("/api/v1/rooms/%d/members", id)
	post := fmt.Sprintf("/api/v1/rooms/%d/messages", id)
	for round := range 3 {
		alice.call(t, a, "POST", members, map[string]any{"username": "bob"}, http.StatusCreated)
		for i := range 3 { // the first fills B's cache, the others use it
			bob.call(t, b, "POST", post, map[string]any{"text": fmt.Sprint("hi ", round, i)}, http.StatusCreated)
		}
		alice.call(t, a, "DELETE", members+"/bob", nil, http.StatusOK)
		bob.call(t, b, "POST", post, map[string]any{"text": "still here?"}, http.StatusForbidden)
	}
}
