package server_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
)

// A kick (or a server-API disconnect) names the user as the account does; a
// connection whose token names them in another case is the same user
// (accounts are unique ignoring case) and must be reached.
func TestKickReachesTokenInAnotherCase(t *testing.T) {
	ts := startServer(t, nil)
	cl := connectAs(t, ts, "Carol", "room:*")
	cl.call(map[string]any{"op": "subscribe", "channel": "room:a"})
	res := ts.api(t, "/api/unsubscribe", map[string]any{"user": "carol", "channel": "room:a"}, http.StatusOK)
	if num(res["unsubscribed"]) != 1 {
		t.Fatalf("/api/unsubscribe carol: %v, want 1 connection of Carol", res)
	}
	res = ts.api(t, "/api/disconnect", map[string]any{"user": "carol"}, http.StatusOK)
	if num(res["disconnected"]) != 1 {
		t.Fatalf("/api/disconnect carol: %v, want 1 connection of Carol", res)
	}
	if ce := cl.waitClose(); ce.Code != 4502 {
		t.Fatalf("close %v, want 4502", ce)
	}
}

// A chat kick racing the kicked member's subscribe: the membership decision
// and the registration are atomic with respect to the kick, so after each
// kick the member holds no subscription, whatever the interleaving (before
// the fix a stale subscription survived within 5–126 cycles, ignored
// unsubscribe with 107 and outlived the connection).
func TestKickRacingSubscribe(t *testing.T) {
	ts := startServer(t, nil)
	alice, bob := signup(t, ts.URL, "alice"), signup(t, ts.URL, "Bob")
	room := alice.call(t, ts, "POST", "/api/v1/rooms", map[string]any{"name": "team", "kind": "private"}, http.StatusCreated)
	id := int64(room["id"].(float64))
	ch := room["channel"].(string)
	members := fmt.Sprintf("/api/v1/rooms/%d/members", id)
	bc := connectChat(t, ts, bob)

	const cycles = 100
	for i := 0; i < cycles; i++ {
		alice.call(t, ts, "POST", members, map[string]any{"username": "bob"}, http.StatusCreated)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // the kick, in the same instant as the subscribe
			defer wg.Done()
			restCall(t, ts.URL, alice.token, "DELETE", members+"/bob", nil, http.StatusOK)
		}()
		_, perr, _ := bc.reply(bc.send(map[string]any{"op": "subscribe", "channel": ch}))
		wg.Wait()
		if perr != nil && num(perr["code"]) != 104 {
			t.Fatalf("cycle %d: subscribe error %v, want success or 104", i, perr)
		}
		// The kick has returned: whichever came first, nothing is left.
		if subs := ts.Hub().Subscribers(ch); len(subs) != 0 {
			t.Fatalf("cycle %d: %d subscriptions to %s after the kick (subscribe error %v)", i, len(subs), ch, perr)
		}
		bc.callErr(map[string]any{"op": "unsubscribe", "channel": ch}, 107)
		if n := ts.Node().UserSubscriptions("bob"); n != 0 {
			t.Fatalf("cycle %d: bob's connections count %d subscriptions", i, n)
		}
	}
	// No further publication reaches the kicked member: alice posts, then a
	// ping round trip shows nothing was queued for bob before it.
	alice.call(t, ts, "POST", fmt.Sprintf("/api/v1/rooms/%d/messages", id), map[string]any{"text": "after the kicks"}, http.StatusCreated)
	_, _, pushes := bc.reply(bc.send(map[string]any{"op": "ping"}))
	for _, p := range pushes {
		if p["push"] == "pub" && p["channel"] == ch {
			t.Fatalf("the kicked member got %v", p)
		}
	}
	// And a subscription that did exist does not outlive its connection.
	alice.call(t, ts, "POST", members, map[string]any{"username": "bob"}, http.StatusCreated)
	bc.call(map[string]any{"op": "subscribe", "channel": ch})
	_ = bc.c.CloseNow()
	waitFor(t, func() bool { return len(ts.Hub().Subscribers(ch)) == 0 && ts.Node().UserSubscriptions("bob") == 0 })
}
