package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/sori-dev/sori/internal/accounts"
)

// TestChatProfilesInMembersAndMessages: a display name and an avatar set
// through the API show in /me, in the room's member list and beside the
// author of each message, and the avatar URL serves the image.
func TestChatProfilesInMembersAndMessages(t *testing.T) {
	ts := startServer(t, nil)
	alice, bob := signup(t, ts.URL, "alice"), signup(t, ts.URL, "bob")
	alice.call(t, ts, "PATCH", "/api/v1/me", map[string]any{"display_name": "Alice L."}, http.StatusOK)
	var img bytes.Buffer
	if err := png.Encode(&img, image.NewGray(image.Rect(0, 0, 8, 8))); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("PUT", ts.URL+"/api/v1/me/avatar", bytes.NewReader(img.Bytes()))
	req.Header.Set("Authorization", "Bearer "+alice.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT avatar: %d", resp.StatusCode)
	}
	me := alice.call(t, ts, "GET", "/api/v1/me", nil, http.StatusOK)["user"].(map[string]any)
	url, _ := me["avatar_url"].(string)
	if me["display_name"] != "Alice L." || url == "" {
		t.Fatalf("/me user = %v", me)
	}

	room := alice.call(t, ts, "POST", "/api/v1/rooms", map[string]any{"name": "lobby", "kind": "public"}, http.StatusCreated)
	rid := strconv.FormatInt(int64(num(room["id"])), 10)
	bob.call(t, ts, "POST", "/api/v1/rooms/"+rid+"/join", nil, http.StatusOK)
	alice.call(t, ts, "POST", "/api/v1/rooms/"+rid+"/messages", map[string]any{"text": "hi"}, http.StatusCreated)
	bob.call(t, ts, "POST", "/api/v1/rooms/"+rid+"/messages", map[string]any{"text": "hello"}, http.StatusCreated)

	members := bob.call(t, ts, "GET", "/api/v1/rooms/"+rid+"/members", nil, http.StatusOK)["members"].([]any)
	byName := map[string]map[string]any{}
	for _, m := range members {
		byName[m.(map[string]any)["username"].(string)] = m.(map[string]any)
	}
	if a, b := byName["alice"], byName["bob"]; a["display_name"] != "Alice L." || a["avatar_url"] != url || b["display_name"] != "" || b["avatar_url"] != "" {
		t.Fatalf("members = %v", members)
	}
	msgs := bob.call(t, ts, "GET", "/api/v1/rooms/"+rid+"/messages", nil, http.StatusOK)["messages"].([]any)
	if len(msgs) != 2 {
		t.Fatalf("messages = %v", msgs)
	}
	m0, m1 := msgs[0].(map[string]any), msgs[1].(map[string]any)
	if m0["user"] != "alice" || m0["display_name"] != "Alice L." || m0["avatar_url"] != url || m1["display_name"] != nil || m1["avatar_url"] != nil {
		t.Fatalf("messages = %v", msgs)
	}
	req, _ = http.NewRequest("GET", ts.URL+url, nil)
	req.Header.Set("Authorization", "Bearer "+bob.token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, resp.Header)
	}
}

// TestProfileChangeSignalsTheRooms: when alice changes her display name or
// avatar, a member of each of her rooms who watches its #live channel gets
// {"type":"profile"} with the new values (her page updates without a
// reload); a room she is not in hears nothing of it.
func TestProfileChangeSignalsTheRooms(t *testing.T) {
	ts := startServer(t, nil)
	alice, bob := signup(t, ts.URL, "alice"), signup(t, ts.URL, "bob")
	shared := alice.call(t, ts, "POST", "/api/v1/rooms", map[string]any{"name": "shared", "kind": "public"}, http.StatusCreated)
	bob.call(t, ts, "POST", "/api/v1/rooms/"+strconv.Itoa(int(num(shared["id"])))+"/join", nil, http.StatusOK)
	own := bob.call(t, ts, "POST", "/api/v1/rooms", map[string]any{"name": "bobs", "kind": "private"}, http.StatusCreated)
	live := "chat:" + strconv.Itoa(int(num(shared["id"]))) + "#live"
	other := "chat:" + strconv.Itoa(int(num(own["id"]))) + "#live"
	bc := connectChat(t, ts, bob)
	bc.call(map[string]any{"op": "subscribe", "channel": other})
	bc.call(map[string]any{"op": "subscribe", "channel": live})

	next := func() map[string]any {
		t.Helper()
		for {
			m := bc.next()
			if m["push"] != "pub" {
				continue
			}
			if d := m["data"].(map[string]any); m["channel"] == live && d["type"] == "profile" {
				return d
			}
			t.Fatalf("bob got %v, want a profile signal on %s", m, live)
		}
	}
	alice.call(t, ts, "PATCH", "/api/v1/me", map[string]any{"display_name": "Alice L."}, http.StatusOK)
	if d := next(); d["user"] != "alice" || d["display_name"] != "Alice L." || d["avatar_url"] != "" {
		t.Fatalf("profile signal after the name change: %v", d)
	}
	var img bytes.Buffer
	if err := png.Encode(&img, image.NewGray(image.Rect(0, 0, 8, 8))); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("PUT", ts.URL+"/api/v1/me/avatar", bytes.NewReader(img.Bytes()))
	req.Header.Set("Authorization", "Bearer "+alice.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	me := alice.call(t, ts, "GET", "/api/v1/me", nil, http.StatusOK)["user"].(map[string]any)
	if d := next(); d["user"] != "alice" || d["display_name"] != "Alice L." || d["avatar_url"] == "" || d["avatar_url"] != me["avatar_url"] {
		t.Fatalf("profile signal after the avatar upload: %v (me %v)", d, me)
	}
	alice.call(t, ts, "DELETE", "/api/v1/me/avatar", nil, http.StatusOK)
	if d := next(); d["avatar_url"] != "" {
		t.Fatalf("profile signal after the avatar removal: %v", d)
	}
	// Bob's own room, which alice is not in, got nothing: bob's typing
	// there is the first thing on its channel.
	// (The push may come before or after the rpc's reply.)
	_, perr, pushes := bc.reply(bc.send(map[string]any{"op": "rpc", "method": "chat.typing", "data": map[string]any{"room": num(own["id"])}}))
	if perr != nil {
		t.Fatalf("chat.typing: %v", perr)
	}
	var first map[string]any
	for _, p := range pushes {
		if p["push"] == "pub" && p["channel"] == other {
			first = p
			break
		}
	}
	if first == nil {
		first = bc.nextPub(other)
	}
	if d := first["data"].(map[string]any); d["type"] != "typing" {
		t.Fatalf("bob's own room got %v, want only his typing", d)
	}
}

// TestProfileChangesAreBounded: a script looping on PATCH /me against the
// real server is refused (429, error 109, Retry-After) once the user's
// burst of profile changes is spent, each of which would be announced to
// every room of the user.
func TestProfileChangesAreBounded(t *testing.T) {
	ts := startServer(t, nil)
	alice := signup(t, ts.URL, "alice")
	accepted := 0
	for i := range 2 * accounts.ProfileChangeBurst {
		req, _ := http.NewRequest("PATCH", ts.URL+"/api/v1/me", strings.NewReader(fmt.Sprintf(`{"display_name":"Alice %d"}`, i)))
		req.Header.Set("Authorization", "Bearer "+alice.token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Error struct{ Code int } `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			accepted++
			continue
		}
		if resp.StatusCode != http.StatusTooManyRequests || out.Error.Code != 109 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("change %d: %d, error %d, Retry-After %q; want 200, or 429/109 with Retry-After", i, resp.StatusCode, out.Error.Code, resp.Header.Get("Retry-After"))
		}
		if accepted < accounts.ProfileChangeBurst {
			t.Fatalf("refused after %d changes, want at least the burst of %d", accepted, accounts.ProfileChangeBurst)
		}
		return
	}
	t.Fatalf("%d profile changes in a row were all accepted", 2*accounts.ProfileChangeBurst)
}
