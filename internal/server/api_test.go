package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// post sends a raw body with an optional API key and returns status and JSON.
func (ts *testServer) post(t *testing.T, path, key, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ts.URL+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "apikey "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("POST %s: %d with a body that is not JSON: %v", path, resp.StatusCode, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("POST %s: content type %q", path, ct)
	}
	return resp.StatusCode, out
}

func errCode(m map[string]any) float64 {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(float64)
	return c
}

func TestAPIAuthAndErrors(t *testing.T) {
	ts := startServer(t, nil)
	paths := []string{"/api/publish", "/api/broadcast", "/api/history", "/api/presence", "/api/disconnect", "/api/unsubscribe", "/api/token"}
	for _, p := range paths {
		for _, key := range []string{"", "wrong-key"} {
			status, body := ts.post(t, p, key, `{}`)
			if status != http.StatusUnauthorized || errCode(body) != 104 {
				t.Errorf("%s with key %q: %d %v, want 401 with error 104", p, key, status, body)
			}
		}
		status, body := ts.post(t, p, ts.APIKey, `{"channel":`)
		if status != http.StatusBadRequest || errCode(body) != 101 {
			t.Errorf("%s with bad JSON: %d %v, want 400 with error 101", p, status, body)
		}
		big := `{"channel":"plain","data":"` + strings.Repeat("x", 1<<20) + `"}`
		status, body = ts.post(t, p, ts.APIKey, big)
		if status != http.StatusRequestEntityTooLarge || errCode(body) != 110 {
			t.Errorf("%s with a 1 MiB body: %d %v, want 413 with error 110", p, status, body)
		}
	}
}

func TestAPICalls(t *testing.T) {
	ts := startServer(t, nil)
	alice := connectAs(t, ts, "alice", "room:*")
	alice.call(map[string]any{"op": "subscribe", "channel": "room:a"})
	alice.call(map[string]any{"op": "subscribe", "channel": "feed:btc"})

	// publish
	res := ts.api(t, "/api/publish", map[string]any{"channel": "room:a", "data": map[string]any{"text": "from the backend"}}, http.StatusOK)
	if num(res["offset"]) != 1 || res["epoch"] == "" {
		t.Fatalf("publish: %v", res)
	}
	if p := alice.next(); p["push"] != "pub" || p["user"] != nil || p["data"].(map[string]any)["text"] != "from the backend" {
		t.Fatalf("alice got %v", p)
	}
	// publish into a server-only namespace works through the API
	ts.api(t, "/api/publish", map[string]any{"channel": "feed:btc", "data": 97000}, http.StatusOK)
	if p := alice.next(); p["channel"] != "feed:btc" {
		t.Fatalf("alice got %v", p)
	}
	for _, tt := range []struct {
		body string
		want int
		code float64
	}{
		{`{"channel":"room:a"}`, 400, 114},
		{`{"channel":"bad name","data":1}`, 400, 111},
		{`{"channel":"nons:a","data":1}`, 400, 111},
		{`{"channel":"room:a","data":1}`, 200, 0},
	} {
		status, body := ts.post(t, "/api/publish", ts.APIKey, tt.body)
		if status != tt.want || errCode(body) != tt.code {
			t.Errorf("publish %s: %d %v, want %d %v", tt.body, status, body, tt.want, tt.code)
		}
	}
	alice.next() // the last publication

	// broadcast: per-channel results
	res = ts.api(t, "/api/broadcast", map[string]any{"channels": []string{"room:a", "room:b", "bad name"}, "data": 1}, http.StatusOK)
	results := res["results"].([]any)
	if len(results) != 3 || results[0].(map[string]any)["error"] != nil || results[2].(map[string]any)["error"] == nil {
		t.Fatalf("broadcast: %v", res)
	}
	if p := alice.next(); p["channel"] != "room:a" {
		t.Fatalf("alice got %v", p)
	}
	if status, _ := ts.post(t, "/api/broadcast", ts.APIKey, `{"channels":[],"data":1}`); status != 400 {
		t.Fatalf("empty broadcast: %d", status)
	}

	// history
	res = ts.api(t, "/api/history", map[string]any{"channel": "room:a", "limit": 2}, http.StatusOK)
	if pubs := res["publications"].([]any); len(pubs) != 2 || num(pubs[1].(map[string]any)["offset"]) != 3 {
		t.Fatalf("history: %v", res)
	}
	res = ts.api(t, "/api/history", map[string]any{"channel": "room:a", "since": map[string]any{"epoch": res["epoch"], "offset": 1}}, http.StatusOK)
	if pubs := res["publications"].([]any); len(pubs) != 2 {
		t.Fatalf("history since 1: %v", res)
	}
	ts.api(t, "/api/history", map[string]any{"channel": "room:a", "since": map[string]any{"epoch": "x", "offset": 1}}, http.StatusConflict)
	ts.api(t, "/api/history", map[string]any{"channel": "plain"}, http.StatusConflict)

	// presence
	res = ts.api(t, "/api/presence", map[string]any{"channel": "room:a"}, http.StatusOK)
	if clients := res["clients"].([]any); len(clients) != 1 || clients[0].(map[string]any)["user"] != "alice" {
		t.Fatalf("presence: %v", res)
	}
	ts.api(t, "/api/presence", map[string]any{"channel": "feed:btc"}, http.StatusConflict)

	// unsubscribe: the client is told with an unsub push
	res = ts.api(t, "/api/unsubscribe", map[string]any{"user": "alice", "channel": "room:a"}, http.StatusOK)
	if num(res["unsubscribed"]) != 1 {
		t.Fatalf("unsubscribe: %v", res)
	}
	if p := alice.next(); p["push"] != "unsub" || p["channel"] != "room:a" {
		t.Fatalf("alice got %v", p)
	}
	ts.api(t, "/api/unsubscribe", map[string]any{"channel": "room:a"}, http.StatusBadRequest)

	// token: minted tokens work and carry their grants
	res = ts.api(t, "/api/token", map[string]any{"user": "carol", "ttl": "10m", "channels": []string{"room:c"}}, http.StatusOK)
	if num(res["expires_in"]) != 600 {
		t.Fatalf("token: %v", res)
	}
	carol := dial(t, ts, nil)
	carol.call(map[string]any{"op": "connect", "token": res["token"]})
	carol.call(map[string]any{"op": "subscribe", "channel": "room:c"})
	carol.callErr(map[string]any{"op": "subscribe", "channel": "room:d"}, 104)
	ts.api(t, "/api/token", map[string]any{"user": ""}, http.StatusBadRequest)
	ts.api(t, "/api/token", map[string]any{"user": "x", "ttl": "-1h"}, http.StatusBadRequest)

	// disconnect: kicked for good, or asked to reconnect
	res = ts.api(t, "/api/disconnect", map[string]any{"user": "carol", "reconnect": true}, http.StatusOK)
	if num(res["disconnected"]) != 1 {
		t.Fatalf("disconnect: %v", res)
	}
	if ce := carol.waitClose(); ce.Code != 4004 {
		t.Fatalf("carol closed with %v, want 4004", ce)
	}
	ts.api(t, "/api/disconnect", map[string]any{"user": "alice"}, http.StatusOK)
	if ce := alice.waitClose(); ce.Code != 4502 {
		t.Fatalf("alice closed with %v, want 4502", ce)
	}
	res = ts.api(t, "/api/disconnect", map[string]any{"user": "nobody"}, http.StatusOK)
	if num(res["disconnected"]) != 0 {
		t.Fatalf("disconnect nobody: %v", res)
	}
}

// TestAPIBroadcastRefusalCodes: a refusal from a channel's backend (a chat
// room that does not exist, data a chat room does not take) reaches the
// caller of /api/broadcast with its own code, as /api/publish reports it,
// not as 100 "internal".
func TestAPIBroadcastRefusalCodes(t *testing.T) {
	ts := startServer(t, nil)
	for _, tt := range []struct {
		channel, data string
	}{
		{"chat:999999", `{"type":"message","text":"hi"}`},
		{"chat:999999", `1`},
	} {
		_, pub := ts.post(t, "/api/publish", ts.APIKey, `{"channel":"`+tt.channel+`","data":`+tt.data+`}`)
		want := errCode(pub)
		if want == 0 || want == 100 {
			t.Fatalf("publish %s %s: %v, want a refusal other than 100", tt.channel, tt.data, pub)
		}
		res := ts.api(t, "/api/broadcast", map[string]any{"channels": []string{tt.channel}, "data": json.RawMessage(tt.data)}, http.StatusOK)
		results := res["results"].([]any)
		if got := errCode(results[0].(map[string]any)); got != want {
			t.Errorf("broadcast %s %s: error %v, want %v as /api/publish answers", tt.channel, tt.data, results[0], want)
		}
	}
}

// TestUnknownAPIPathIsJSON404: a mistyped /api/ path answers a JSON 404
// with error 117, not the web app's HTML with 200; the app is still served.
func TestUnknownAPIPathIsJSON404(t *testing.T) {
	ts := startServer(t, nil)
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/api/nope"},
		{http.MethodPost, "/api/v1/nope"},
		{http.MethodGet, "/api/v1/rooms/1/nope"},
	} {
		req, _ := http.NewRequest(tc.method, ts.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		decErr := json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || decErr != nil || errCode(body) != 117 {
			t.Errorf("%s %s: %d %q %v, want a JSON 404 with error 117", tc.method, tc.path, resp.StatusCode,
				resp.Header.Get("Content-Type"), body)
		}
	}
	resp, err := http.Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
