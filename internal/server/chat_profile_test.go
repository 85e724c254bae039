package server_test

import (
	"bytes"
	"image"
	"image/png"
	"net/http"
	"strconv"
	"testing"
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
