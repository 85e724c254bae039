package server_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/config"
)

// wantLeft checks a left push: who left, and why.
func wantLeft(t *testing.T, m map[string]any, id any, reason string) {
	t.Helper()
	if p, _ := m["participant"].(map[string]any); p["id"] != id || m["reason"] != reason {
		t.Fatalf("left push %v: want participant %v with reason %q", m, id, reason)
	}
}

// TestCallFollowsChatMembership: a member kicked from the chat room, or
// leaving it, is removed from the room's running call at once, and cannot
// join it again.
func TestCallFollowsChatMembership(t *testing.T) {
	ts := startServer(t, nil)
	room, users := chatRoomOf(t, ts, "alice", "bob", "carol")
	var ccs []*callClient
	ids := map[string]any{}
	for _, u := range users {
		cc := newCallClient(t, connectChat(t, ts, u))
		ccs = append(ccs, cc)
		ids[u.name] = cc.must("call.join", map[string]any{"room": room})["participant"]
	}
	alice, bob, carol := ccs[0], ccs[1], ccs[2]
	alice.nextCall("joined")
	alice.nextCall("joined")
	bob.nextCall("joined")

	// Carol has a second connection (another tab) in the call: both go.
	carolTab := newCallClient(t, connectChat(t, ts, users[2]))
	tabID := carolTab.must("call.join", map[string]any{"room": room})["participant"]
	for _, cc := range []*callClient{alice, bob, carol} {
		cc.nextCall("joined")
	}

	users[0].call(t, ts, "DELETE", fmt.Sprintf("/api/v1/rooms/%s/members/carol", room), nil, http.StatusOK)
	for _, cc := range []*callClient{alice, bob} {
		wantLeft(t, cc.nextCall("left"), ids["carol"], "kicked")
		wantLeft(t, cc.nextCall("left"), tabID, "kicked")
	}
	// Each of Carol's connections hears that it is out of the call.
	wantLeft(t, carol.nextCall("left"), ids["carol"], "kicked")
	wantLeft(t, carolTab.nextCall("left"), tabID, "kicked")
	carol.refused("call.join", map[string]any{"room": room}, 104)
	carol.refused("call.signal", map[string]any{"room": room, "to": ids["alice"], "restart": true}, 117)
	carolTab.refused("call.state", map[string]any{"room": room, "muted": true}, 117)

	// Bob leaves the chat room: out of the call too, with his own reason.
	users[1].call(t, ts, "POST", fmt.Sprintf("/api/v1/rooms/%s/leave", room), nil, http.StatusOK)
	wantLeft(t, alice.nextCall("left"), ids["bob"], "left room")
	wantLeft(t, bob.nextCall("left"), ids["bob"], "left room")
	bob.refused("call.join", map[string]any{"room": room}, 104)

	// Alice is still in the call, alone.
	if st := alice.must("call.state", map[string]any{"room": room, "muted": true}); st["muted"] != true {
		t.Fatalf("alice's state %v", st)
	}
	select {
	case m := <-alice.pushes:
		t.Fatalf("alice got a push after everyone else left: %v", m)
	default:
	}
}

// TestCallJoinReplacesAStaleParticipant: a connection that died without a
// close still holds its place in a full mesh until the heartbeat drops it; a
// rejoin of the same user that names its old participant in "replaces"
// takes the place at once.
func TestCallJoinReplacesAStaleParticipant(t *testing.T) {
	// Heartbeats far apart, so the dead connection is certainly still there.
	ts := startServer(t, func(c *config.Config) { c.PingInterval = config.Duration(time.Hour) })
	room, users := chatRoomOf(t, ts, "ann", "ben", "cy", "dee")

	// Ann's first connection: joins, then goes silent without closing (a
	// laptop whose network vanished).
	stale := rawDial(t, ts)
	stale.Connect(users[0].call(t, ts, "POST", "/api/v1/auth/connect-token", nil, http.StatusOK)["token"].(string))
	stale.Text(fmt.Sprintf(`{"id":2,"op":"rpc","method":"call.join","data":{"room":%q}}`, room))
	res := stale.ReadJSON()
	staleID := res["result"].(map[string]any)["participant"]
	if staleID == nil {
		t.Fatalf("stale connection's join: %v", res)
	}
	var others []*callClient
	var benID any
	for _, u := range users[1:] {
		cc := newCallClient(t, connectChat(t, ts, u))
		id := cc.must("call.join", map[string]any{"room": room})["participant"]
		if u.name == "ben" {
			benID = id
		}
		others = append(others, cc)
	}

	// Ann reconnects. The call is full while her stale participant holds a
	// place; naming another user's participant does not help.
	ann := newCallClient(t, connectChat(t, ts, users[0]))
	ann.refused("call.join", map[string]any{"room": room}, 119)
	ann.refused("call.join", map[string]any{"room": room, "replaces": benID}, 119)
	ann.refused("call.join", map[string]any{"room": room, "replaces": "no-such-id"}, 119)

	res = ann.must("call.join", map[string]any{"room": room, "replaces": staleID})
	ps := participantsOf(res)
	if len(ps) != 3 {
		t.Fatalf("participants after the replace %v: want ben, cy, dee", ps)
	}
	for _, p := range ps {
		if p["id"] == staleID || p["user"] == "ann" {
			t.Fatalf("participants after the replace %v: the stale participant is still there", ps)
		}
	}
	for _, cc := range others {
		wantLeft(t, cc.nextCall("left"), staleID, "replaced")
		if p := cc.nextCall("joined")["participant"].(map[string]any); p["id"] != res["participant"] || p["user"] != "ann" {
			t.Fatalf("joined push %v: want ann's new participant", p)
		}
	}
	// Another member cannot push Ann out by naming her participant.
	eve := signup(t, ts.URL, "eve")
	users[0].call(t, ts, "POST", fmt.Sprintf("/api/v1/rooms/%s/members", room), map[string]any{"username": "eve"}, http.StatusCreated)
	newCallClient(t, connectChat(t, ts, eve)).refused("call.join", map[string]any{"room": room, "replaces": res["participant"]}, 119)
	if st := ann.must("call.state", map[string]any{"room": room, "camera": true}); st["camera"] != true {
		t.Fatalf("ann's state %v", st)
	}
}
