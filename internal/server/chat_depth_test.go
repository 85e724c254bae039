package server_test

import (
	"fmt"
	"net/http"
	"testing"
)

// Issue 14 over the real server: idempotent send (REST and publish),
// mentions and notification levels, threads, pins and permalinks, and the
// authorization of each new endpoint.

func TestChatIdempotentSend(t *testing.T) {
	ts := startServer(t, nil)
	alice, bob := signup(t, ts.URL, "alice"), signup(t, ts.URL, "bob")
	room := alice.call(t, ts, "POST", "/api/v1/rooms", map[string]any{"name": "team", "kind": "public"}, http.StatusCreated)
	id, ch := int64(room["id"].(float64)), room["channel"].(string)
	bob.call(t, ts, "POST", fmt.Sprintf("/api/v1/rooms/%d/join", id), nil, http.StatusOK)
	bc := connectChat(t, ts, bob)
	bc.call(map[string]any{"op": "subscribe", "channel": ch})
	msgs := fmt.Sprintf("/api/v1/rooms/%d/messages", id)

	first := alice.call(t, ts, "POST", msgs, map[string]any{"text": "once", "client_id": "out-1"}, http.StatusCreated)
	if first["duplicate"] != nil {
		t.Fatalf("first post: %v", first)
	}
	// A retry after a lost acknowledgement: 200 with the original.
	again := alice.call(t, ts, "POST", msgs, map[string]any{"text": "once", "client_id": "out-1"}, http.StatusOK)
	if again["duplicate"] != true || again["seq"] != first["seq"] || again["epoch"] != first["epoch"] {
		t.Fatalf("retry: %v, want the first %v with duplicate", again, first)
	}
	// The same key over the real-time publish: the same answer.
	ac := connectChat(t, ts, alice)
	res := ac.call(map[string]any{"op": "publish", "channel": ch, "data": map[string]any{"type": "message", "text": "once", "client_id": "out-1"}})
	if res["duplicate"] != true || res["offset"] != first["seq"] {
		t.Fatalf("publish retry: %v", res)
	}
	// A new key over publish is a new message, acknowledged without the flag.
	res = ac.call(map[string]any{"op": "publish", "channel": ch, "data": map[string]any{"type": "message", "text": "twice", "client_id": "out-2"}})
	if res["duplicate"] != nil || num(res["offset"]) != num(first["seq"])+1 {
		t.Fatalf("publish: %v", res)
	}
	// Bob saw each message exactly once, each with its client_id.
	for i, want := range []string{"out-1", "out-2"} {
		pub := bc.nextPub(ch)
		data := pub["data"].(map[string]any)
		if num(pub["offset"]) != num(first["seq"])+uint64(i) || data["client_id"] != want {
			t.Fatalf("bob's publication %d: %v, want client_id %s", i, pub, want)
		}
	}
	list := bob.call(t, ts, "GET", msgs, nil, http.StatusOK)["messages"].([]any)
	if len(list) != 2 || list[0].(map[string]any)["client_id"] != "out-1" {
		t.Fatalf("messages: %v", list)
	}
	// Another user's equal key is theirs.
	bob.call(t, ts, "POST", msgs, map[string]any{"text": "mine", "client_id": "out-1"}, http.StatusCreated)
	for _, bad := range []string{"has space", "ü", fmt.Sprintf("%065d", 0)} {
		alice.call(t, ts, "POST", msgs, map[string]any{"text": "x", "client_id": bad}, http.StatusBadRequest)
		ac.callErr(map[string]any{"op": "publish", "channel": ch, "data": map[string]any{"type": "message", "text": "x", "client_id": bad}}, 101)
	}
}

func TestChatMentionsAndNotify(t *testing.T) {
	ts := startServer(t, nil)
	alice, bob, carol := signup(t, ts.URL, "alice"), signup(t, ts.URL, "bob"), signup(t, ts.URL, "carol")
	eve := signup(t, ts.URL, "eve")
	room := alice.call(t, ts, "POST", "/api/v1/rooms", map[string]any{"name": "team", "kind": "public"}, http.StatusCreated)
	id, ch := int64(room["id"].(float64)), room["channel"].(string)
	base := fmt.Sprintf("/api/v1/rooms/%d", id)
	bob.call(t, ts, "POST", base+"/join", nil, http.StatusOK)
	carol.call(t, ts, "POST", base+"/join", nil, http.StatusOK)
	bc := connectChat(t, ts, bob)
	bc.call(map[string]any{"op": "subscribe", "channel": "user:bob"})
	bc.call(map[string]any{"op": "subscribe", "channel": ch})

	posted := alice.call(t, ts, "POST", base+"/messages", map[string]any{"text": "hi @Bob and @eve, mail bob@example.com"}, http.StatusCreated)
	ev := bc.nextPub("user:bob")["data"].(map[string]any)
	if ev["type"] != "mention" || int64(num(ev["room"])) != id || ev["seq"] != posted["seq"] || ev["by"] != "alice" {
		t.Fatalf("bob's mention event: %v", ev)
	}
	data := bc.nextPub(ch)["data"].(map[string]any)
	if fmt.Sprint(data["mentions"]) != "[bob]" || data["mention_room"] != nil {
		t.Fatalf("publication: %v (eve is no member: plain text)", data)
	}
	myRoom := func(u chatUser) map[string]any {
		for _, r := range u.call(t, ts, "GET", "/api/v1/rooms", nil, http.StatusOK)["rooms"].([]any) {
			if r := r.(map[string]any); int64(num(r["id"])) == id {
				return r
			}
		}
		t.Fatal("room not listed")
		return nil
	}
	if r := myRoom(bob); num(r["mentions"]) != 1 || r["notify"] != "all" {
		t.Fatalf("bob's room: %v", r)
	}
	// @room counts only from admins and owners.
	carol.call(t, ts, "POST", base+"/messages", map[string]any{"text": "@room lunch?"}, http.StatusCreated)
	if d := bc.nextPub(ch)["data"].(map[string]any); d["mention_room"] != nil {
		t.Fatalf("a member's @room was honoured: %v", d)
	}
	alice.call(t, ts, "POST", base+"/messages", map[string]any{"text": "@room meeting"}, http.StatusCreated)
	// (The personal event is published before the room's fan-out, and
	// nextPub skips other channels: read it first.)
	if ev := bc.nextPub("user:bob")["data"].(map[string]any); ev["type"] != "mention" {
		t.Fatalf("bob's @room event: %v", ev)
	}
	if d := bc.nextPub(ch)["data"].(map[string]any); d["mention_room"] != true {
		t.Fatalf("the owner's @room: %v", d)
	}
	if r := myRoom(bob); num(r["mentions"]) != 2 {
		t.Fatalf("bob's mentions after @room: %v", r)
	}

	// Muted: no mention event. The next one bob gets is from the direct
	// room, which he did not mute.
	bob.call(t, ts, "PUT", base+"/notify", map[string]any{"level": "none"}, http.StatusOK)
	if r := myRoom(bob); r["notify"] != "none" {
		t.Fatalf("notify: %v", r)
	}
	alice.call(t, ts, "POST", base+"/messages", map[string]any{"text": "@bob are you there"}, http.StatusCreated)
	dm := alice.call(t, ts, "POST", "/api/v1/direct/bob", nil, http.StatusCreated)
	dmID := int64(num(dm["id"]))
	alice.call(t, ts, "POST", fmt.Sprintf("/api/v1/rooms/%d/messages", dmID), map[string]any{"text": "@bob psst"}, http.StatusCreated)
	for {
		ev := bc.nextPub("user:bob")["data"].(map[string]any)
		if ev["type"] == "dm_opened" {
			continue
		}
		if ev["type"] != "mention" || int64(num(ev["room"])) != dmID {
			t.Fatalf("bob got %v while the room was muted", ev)
		}
		break
	}
	alice.call(t, ts, "POST", fmt.Sprintf("/api/v1/rooms/%d/messages", dmID), map[string]any{"text": "no mention"}, http.StatusCreated)
	if r := myRoomOf(t, ts, bob, dmID); num(r["mentions"]) != 2 {
		t.Fatalf("direct room: every unread message counts: %v", r)
	}

	// Authorization and validation of PUT notify.
	bob.call(t, ts, "PUT", base+"/notify", map[string]any{"level": "loud"}, http.StatusBadRequest)
	eve.call(t, ts, "PUT", base+"/notify", map[string]any{"level": "all"}, http.StatusForbidden)
	restCall(t, ts.URL, "", "PUT", base+"/notify", map[string]any{"level": "all"}, http.StatusUnauthorized)
}

func myRoomOf(t *testing.T, ts *testServer, u chatUser, id int64) map[string]any {
	t.Helper()
	for _, r := range u.call(t, ts, "GET", "/api/v1/rooms", nil, http.StatusOK)["rooms"].([]any) {
		if r := r.(map[string]any); int64(num(r["id"])) == id {
			return r
		}
	}
	t.Fatalf("room %d not listed", id)
	return nil
}

func TestChatThreadsPinsPermalinks(t *testing.T) {
	ts := startServer(t, nil)
	alice, bob, eve := signup(t, ts.URL, "alice"), signup(t, ts.URL, "bob"), signup(t, ts.URL, "eve")
	room := alice.call(t, ts, "POST", "/api/v1/rooms", map[string]any{"name": "team", "kind": "private"}, http.StatusCreated)
	id := int64(room["id"].(float64))
	base := fmt.Sprintf("/api/v1/rooms/%d", id)
	alice.call(t, ts, "POST", base+"/members", map[string]any{"username": "bob"}, http.StatusCreated)

	root := alice.call(t, ts, "POST", base+"/messages", map[string]any{"text": "plan for friday"}, http.StatusCreated)
	rootSeq := num(root["seq"])
	r1 := bob.call(t, ts, "POST", base+"/messages", map[string]any{"text": "welcome idea", "thread": rootSeq}, http.StatusCreated)
	r2 := alice.call(t, ts, "POST", base+"/messages", map[string]any{"text": "second", "thread": rootSeq}, http.StatusCreated)
	bob.call(t, ts, "POST", base+"/messages", map[string]any{"text": "x", "thread": num(r1["seq"])}, http.StatusBadRequest)
	bob.call(t, ts, "POST", base+"/messages", map[string]any{"text": "x", "thread": 99}, http.StatusNotFound)

	th := bob.call(t, ts, "GET", fmt.Sprintf("%s/threads/%d", base, rootSeq), nil, http.StatusOK)
	rm := th["root"].(map[string]any)
	replies := th["messages"].([]any)
	if num(rm["thread_replies"]) != 2 || rm["thread_last_seq"] != r2["seq"] || len(replies) != 2 ||
		replies[0].(map[string]any)["thread"] != float64(rootSeq) {
		t.Fatalf("thread: %v", th)
	}
	th = bob.call(t, ts, "GET", fmt.Sprintf("%s/threads/%d?after=%d&limit=5", base, rootSeq, num(r1["seq"])), nil, http.StatusOK)
	if ms := th["messages"].([]any); len(ms) != 1 || ms[0].(map[string]any)["seq"] != r2["seq"] {
		t.Fatalf("thread after: %v", th)
	}
	// Thread replies are found by search, by a prefix too.
	found := bob.call(t, ts, "GET", fmt.Sprintf("/api/v1/search?q=welc&room=%d", id), nil, http.StatusOK)["messages"].([]any)
	if len(found) != 1 || found[0].(map[string]any)["seq"] != r1["seq"] {
		t.Fatalf("search welc: %v", found)
	}

	// Pins.
	bob.call(t, ts, "PUT", fmt.Sprintf("%s/pins/%d", base, rootSeq), nil, http.StatusOK)
	bob.call(t, ts, "PUT", fmt.Sprintf("%s/pins/%d", base, rootSeq), nil, http.StatusConflict)
	bob.call(t, ts, "PUT", fmt.Sprintf("%s/pins/%d", base, 99), nil, http.StatusNotFound)
	pins := alice.call(t, ts, "GET", base+"/pins", nil, http.StatusOK)["pins"].([]any)
	if len(pins) != 1 || pins[0].(map[string]any)["pinned_by"] != "bob" || pins[0].(map[string]any)["text"] != "plan for friday" {
		t.Fatalf("pins: %v", pins)
	}
	events := alice.call(t, ts, "GET", base+"/events?after=3", nil, http.StatusOK)["publications"].([]any)
	if d := events[len(events)-1].(map[string]any)["data"].(map[string]any); d["type"] != "pin" || num(d["target"]) != rootSeq {
		t.Fatalf("pin event: %v", d)
	}
	alice.call(t, ts, "DELETE", fmt.Sprintf("%s/pins/%d", base, rootSeq), nil, http.StatusOK)
	if pins := alice.call(t, ts, "GET", base+"/pins", nil, http.StatusOK)["pins"].([]any); len(pins) != 0 {
		t.Fatalf("pins after unpin: %v", pins)
	}

	// Permalinks: the page around a seq.
	for i := range 6 {
		alice.call(t, ts, "POST", base+"/messages", map[string]any{"text": fmt.Sprint("filler ", i)}, http.StatusCreated)
	}
	page := bob.call(t, ts, "GET", fmt.Sprintf("%s/messages?around=%d&limit=3", base, num(r2["seq"])), nil, http.StatusOK)["messages"].([]any)
	if len(page) != 3 || page[0].(map[string]any)["seq"] != r1["seq"] || page[1].(map[string]any)["seq"] != r2["seq"] {
		t.Fatalf("around: %v", page)
	}
	bob.call(t, ts, "GET", fmt.Sprintf("%s/messages?around=2&before=3", base), nil, http.StatusBadRequest)

	// Every new endpoint refuses non-members and anonymous callers.
	for _, c := range []struct{ method, path string }{
		{"GET", fmt.Sprintf("%s/threads/%d", base, rootSeq)},
		{"GET", base + "/pins"},
		{"PUT", fmt.Sprintf("%s/pins/%d", base, rootSeq)},
		{"DELETE", fmt.Sprintf("%s/pins/%d", base, rootSeq)},
		{"GET", fmt.Sprintf("%s/messages?around=%d", base, rootSeq)},
	} {
		eve.call(t, ts, c.method, c.path, nil, http.StatusForbidden)
		restCall(t, ts.URL, "", c.method, c.path, nil, http.StatusUnauthorized)
	}
}
