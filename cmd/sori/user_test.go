package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func runUser(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := user(args, strings.NewReader(stdin), &out, &errb)
	return out.String() + errb.String(), err
}

func TestUserCommands(t *testing.T) {
	data := t.TempDir()
	if out, err := runUser(t, "first-password\n", "add", "Root", "--admin", "--data", data); err != nil || !strings.Contains(out, "created user Root") {
		t.Fatalf("add: %v %s", err, out)
	}
	if _, err := runUser(t, "another-password\n", "add", "--data", data, "root"); err == nil || !strings.Contains(err.Error(), "taken") {
		t.Fatalf("add a taken name (other case): %v", err)
	}
	if _, err := runUser(t, "short\n", "add", "bob", "--data", data); err == nil {
		t.Fatal("add with a short password succeeded")
	}
	if _, err := runUser(t, "", "add", "carol", "--data", data); err == nil {
		t.Fatal("add with no password on stdin succeeded")
	}
	if _, err := runUser(t, "whatever-pass\n", "add", "bad name", "--data", data); err == nil {
		t.Fatal("add with an invalid name succeeded")
	}
	out, err := runUser(t, "", "list", "--data", data)
	if err != nil || !strings.Contains(out, "Root") || !strings.Contains(out, "true") || strings.Contains(out, "bob") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if out, err := runUser(t, "second-password\n", "reset-password", "ROOT", "--data", data); err != nil || !strings.Contains(out, "reset") {
		t.Fatalf("reset-password: %v %s", err, out)
	}
	if _, err := runUser(t, "second-password\n", "reset-password", "nobody", "--data", data); err == nil {
		t.Fatal("reset-password of an unknown user succeeded")
	}
	if _, err := runUser(t, "", "remove", "Root", "--data", data); err == nil {
		t.Fatal("unknown subcommand succeeded")
	}
}

// `sori user disable` on a running server's data dir locks the user out as
// the admin API does: the open connection closes with 4501 (the server's
// credential poll), login is refused with 104, and the API token from
// before stays dead after `sori user enable`, which lets them log in again.
func TestUserDisableEnableWhileServing(t *testing.T) {
	data := t.TempDir()
	addr := serveBinary(t, data)
	if out, err := runUser(t, "bobs-password\n", "add", "bob", "--data", data); err != nil {
		t.Fatalf("add: %v %s", err, out)
	}
	login := func(want int) map[string]any {
		t.Helper()
		return httpJSON(t, "POST", "http://"+addr+"/api/v1/auth/login", "",
			`{"username":"bob","password":"bobs-password","kind":"api"}`, want)
	}
	api := login(http.StatusOK)["token"].(string)
	conn := httpJSON(t, "POST", "http://"+addr+"/api/v1/auth/connect-token", api, "", http.StatusOK)["token"].(string)
	c := dialWS(t, addr)
	c.call(map[string]any{"op": "connect", "token": conn})

	if code, out, errb := sori(t, "user", "disable", "bob", "--data", data); code != 0 || !strings.Contains(out, "disabled bob") {
		t.Fatalf("sori user disable: exit %d: %s%s", code, out, errb)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // the poll runs every 2 s
	defer cancel()
	for {
		_, msg, err := c.ws.Read(ctx)
		if err != nil {
			if got := websocket.CloseStatus(err); got != 4501 {
				t.Fatalf("bob's connection ended with %v (status %d), want close 4501", err, got)
			}
			break
		}
		t.Logf("frame before the close: %s", msg)
	}
	if e := login(http.StatusUnauthorized); errCodeOf(e) != 104 {
		t.Fatalf("login while disabled: %v, want error 104", e)
	}
	httpJSON(t, "GET", "http://"+addr+"/api/v1/me", api, "", http.StatusUnauthorized)

	if code, out, errb := sori(t, "user", "enable", "bob", "--data", data); code != 0 || !strings.Contains(out, "enabled bob") {
		t.Fatalf("sori user enable: exit %d: %s%s", code, out, errb)
	}
	fresh := login(http.StatusOK)["token"].(string)
	httpJSON(t, "GET", "http://"+addr+"/api/v1/me", fresh, "", http.StatusOK)
	httpJSON(t, "GET", "http://"+addr+"/api/v1/me", api, "", http.StatusUnauthorized) // nothing revoked comes back
	if code, _, _ := sori(t, "user", "disable", "nobody", "--data", data); code != 1 {
		t.Fatalf("disable an unknown user: exit %d, want 1", code)
	}
}

// httpJSON sends body (JSON, or none) with an optional bearer token, checks
// the status and decodes the answer.
func httpJSON(t *testing.T, method, url, token, body string, want int) map[string]any {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %v, want %d", method, url, resp.StatusCode, out, want)
	}
	return out
}

func errCodeOf(m map[string]any) float64 {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(float64)
	return c
}
