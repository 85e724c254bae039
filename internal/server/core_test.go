package server_test

import (
	"testing"
)

func TestPublishSubscribeRoundTrip(t *testing.T) {
	ts := startServer(t, nil)
	alice := connectAs(t, ts, "alice", "room:*")
	bob := connectAs(t, ts, "bob", "room:*")
	alice.call(map[string]any{"op": "subscribe", "channel": "room:lobby"})
	bob.call(map[string]any{"op": "subscribe", "channel": "room:lobby"})
	if join := alice.next(); join["push"] != "join" || join["info"].(map[string]any)["user"] != "bob" {
		t.Fatalf("alice got %v, want bob's join", join)
	}
	res := bob.call(map[string]any{"op": "publish", "channel": "room:lobby", "data": map[string]any{"text": "hi"}})
	if num(res["offset"]) != 1 {
		t.Fatalf("publish offset %v, want 1", res["offset"])
	}
	pub := alice.next()
	if pub["push"] != "pub" || pub["channel"] != "room:lobby" || num(pub["offset"]) != 1 || pub["user"] != "bob" ||
		pub["data"].(map[string]any)["text"] != "hi" {
		t.Fatalf("alice got %v", pub)
	}
}
