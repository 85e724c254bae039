package server_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/auth"
)

// TestLiveChannelRefusesClientPublications (issue 9.8): a non-member whose
// token grants publish on "chat:*" could inject a forged member_kicked into
// any room's #live channel. It gets 104, and members see only the server's
// signals.
func TestLiveChannelRefusesClientPublications(t *testing.T) {
	ts := startServer(t, nil)
	alice := signup(t, ts.URL, "alice")
	room := alice.call(t, ts, "POST", "/api/v1/rooms", map[string]any{"name": "team", "kind": "private"}, http.StatusCreated)
	id := int64(room["id"].(float64))
	live := fmt.Sprintf("chat:%d#live", id)
	ac := connectChat(t, ts, alice)
	ac.call(map[string]any{"op": "subscribe", "channel": live})

	c := auth.NewClaims("mallory", time.Hour, time.Now())
	c.Publish = []string{"chat:*"}
	tok, err := ts.Verifier().Mint(c)
	if err != nil {
		t.Fatal(err)
	}
	mallory := dial(t, ts, nil)
	mallory.call(map[string]any{"op": "connect", "token": tok})
	mallory.callErr(map[string]any{"op": "publish", "channel": live,
		"data": map[string]any{"type": "member_kicked", "member": "alice", "by": "alice"}}, 104)

	// The next signal alice sees is her own typing, not the forgery.
	// (The push may come before or after the rpc's reply.)
	_, perr, pushes := ac.reply(ac.send(map[string]any{"op": "rpc", "method": "chat.typing", "data": map[string]any{"room": id}}))
	if perr != nil {
		t.Fatalf("chat.typing: %v", perr)
	}
	var first map[string]any
	for _, p := range pushes {
		if p["push"] == "pub" && p["channel"] == live {
			first = p
			break
		}
	}
	if first == nil {
		first = ac.nextPub(live)
	}
	if data := first["data"].(map[string]any); data["type"] != "typing" {
		t.Fatalf("alice got %v on #live, want her typing signal", data)
	}
}
