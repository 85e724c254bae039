package rest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/accounts"
)

func pngOf(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	img.Set(0, 0, color.RGBA{R: 200, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// raw sends body as is, with the bearer token tok (if any) and headers.
func (f *fixture) raw(t *testing.T, method, path, tok string, body []byte, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	hr, _ := http.NewRequest(method, f.srv.URL+path, bytes.NewReader(body))
	if tok != "" {
		hr.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range header {
		hr.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func apiToken(t *testing.T, f *fixture, name string) string {
	t.Helper()
	resp, out := f.do(t, req{method: "POST", path: "/api/v1/auth/signup", body: map[string]string{"username": name, "password": "secret-pass", "kind": "api"}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("signup %s: %d %v", name, resp.StatusCode, out)
	}
	return out["token"].(string)
}

// TestProfileDisplayNameAndAvatar is the profile API as a client meets it:
// a display name with its bounds, an avatar whose type is sniffed (an HTML
// page sent as image/png is refused), its size and pixel bounds, and how
// it is served (type, nosniff, caching by version, 304).
func TestProfileDisplayNameAndAvatar(t *testing.T) {
	f := newFixture(t)
	alice, bob := apiToken(t, f, "alice"), apiToken(t, f, "bob")
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

	resp, out := f.do(t, req{method: "PATCH", path: "/api/v1/me", header: bearer(alice), body: map[string]any{"display_name": "  Alice Liddell  "}})
	user, _ := out["user"].(map[string]any)
	if resp.StatusCode != 200 || user["display_name"] != "Alice Liddell" || user["avatar_url"] != "" {
		t.Fatalf("PATCH /me: %d %v", resp.StatusCode, out)
	}
	for name, bad := range map[string]string{
		"too long":        strings.Repeat("é", accounts.MaxDisplayName+1),
		"control":         "a\nb",
		"bidi override":   "evil\u202Eeman",
		"zero-width join": "bo\u200Db",
	} {
		resp, out := f.do(t, req{method: "PATCH", path: "/api/v1/me", header: bearer(alice), body: map[string]any{"display_name": bad}})
		if resp.StatusCode != 400 || errCode(out) != 101 {
			t.Fatalf("display name %s: %d %v, want 400/101", name, resp.StatusCode, out)
		}
	}
	if resp, out := f.do(t, req{method: "PATCH", path: "/api/v1/me", body: map[string]any{"display_name": "x"}}); resp.StatusCode != 401 {
		t.Fatalf("anonymous PATCH /me: %d %v", resp.StatusCode, out)
	}
	// The longest allowed name passes; a body without the field keeps it.
	if resp, out := f.do(t, req{method: "PATCH", path: "/api/v1/me", header: bearer(bob), body: map[string]any{"display_name": strings.Repeat("é", accounts.MaxDisplayName)}}); resp.StatusCode != 200 {
		t.Fatalf("64-character name: %d %v", resp.StatusCode, out)
	}
	resp, out = f.do(t, req{method: "PATCH", path: "/api/v1/me", header: bearer(alice), body: map[string]any{}})
	if user, _ := out["user"].(map[string]any); resp.StatusCode != 200 || user["display_name"] != "Alice Liddell" {
		t.Fatalf("empty PATCH: %d %v", resp.StatusCode, out)
	}

	// Avatars, with a fresh bucket of profile changes (alice made 6 so far).
	f.clock.Add(time.Minute)
	img := pngOf(t, 64, 64)
	html := []byte("<!doctype html><script>alert(1)</script>")
	for name, c := range map[string]struct {
		body   []byte
		status int
		code   int
	}{
		"html as png":        {html, 400, 101},
		"empty":              {nil, 400, 101},
		"too wide":           {pngOf(t, accounts.MaxAvatarSide+1, 1), 400, 101},
		"over 1 MiB":         {append(append([]byte{}, img...), make([]byte, accounts.MaxAvatar)...), 413, 110},
		"png signature only": {img[:8], 400, 101},
	} {
		resp, b := f.raw(t, "PUT", "/api/v1/me/avatar", alice, c.body, map[string]string{"Content-Type": "image/png"})
		var out map[string]any
		_ = json.Unmarshal(b, &out)
		if resp.StatusCode != c.status || errCode(out) != c.code {
			t.Fatalf("avatar %s: %d %s, want %d/%d", name, resp.StatusCode, b, c.status, c.code)
		}
	}
	if resp, _ := f.raw(t, "GET", "/api/v1/users/alice/avatar", bob, nil, nil); resp.StatusCode != 404 {
		t.Fatalf("avatar before upload: %d, want 404", resp.StatusCode)
	}
	resp, b := f.raw(t, "PUT", "/api/v1/me/avatar", alice, img, map[string]string{"Content-Type": "text/html"})
	if resp.StatusCode != 200 {
		t.Fatalf("avatar upload: %d %s", resp.StatusCode, b)
	}
	var me struct{ User map[string]any }
	_ = json.Unmarshal(b, &me)
	url, _ := me.User["avatar_url"].(string)
	if !strings.HasPrefix(url, "/api/v1/users/alice/avatar?v=") {
		t.Fatalf("avatar_url = %q", url)
	}
	resp, got := f.raw(t, "GET", url, bob, nil, nil)
	h := resp.Header
	if resp.StatusCode != 200 || !bytes.Equal(got, img) || h.Get("Content-Type") != "image/png" || h.Get("X-Content-Type-Options") != "nosniff" ||
		!strings.Contains(h.Get("Cache-Control"), "immutable") || h.Get("ETag") == "" || !strings.Contains(h.Get("Content-Security-Policy"), "sandbox") {
		t.Fatalf("GET avatar: %d %d bytes %v", resp.StatusCode, len(got), h)
	}
	// Without the version the answer must be revalidated; with the ETag it is 304.
	resp, _ = f.raw(t, "GET", "/api/v1/users/ALICE/avatar", bob, nil, map[string]string{"If-None-Match": h.Get("ETag")})
	if resp.StatusCode != 304 || resp.Header.Get("Cache-Control") != "private, no-cache" {
		t.Fatalf("revalidation: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := f.raw(t, "GET", url, "", nil, nil); resp.StatusCode != 401 {
		t.Fatalf("anonymous avatar: %d, want 401", resp.StatusCode)
	}
	resp, out = f.do(t, req{method: "GET", path: "/api/v1/users/alice", header: bearer(bob)})
	if resp.StatusCode != 200 || out["display_name"] != "Alice Liddell" || out["avatar_url"] != url || out["username"] != "alice" {
		t.Fatalf("GET /users/alice: %d %v", resp.StatusCode, out)
	}
	if resp, _ := f.do(t, req{method: "GET", path: "/api/v1/users/nobody", header: bearer(bob)}); resp.StatusCode != 404 {
		t.Fatalf("GET /users/nobody: %d", resp.StatusCode)
	}
	// A new avatar gets a new URL; removing it ends both.
	_, b = f.raw(t, "PUT", "/api/v1/me/avatar", alice, pngOf(t, 32, 32), nil)
	_ = json.Unmarshal(b, &me)
	if u2, _ := me.User["avatar_url"].(string); u2 == url || u2 == "" {
		t.Fatalf("second avatar_url %q, first %q", u2, url)
	}
	resp, b = f.raw(t, "DELETE", "/api/v1/me/avatar", alice, nil, nil)
	_ = json.Unmarshal(b, &me)
	if resp.StatusCode != 200 || me.User["avatar_url"] != "" {
		t.Fatalf("DELETE avatar: %d %s", resp.StatusCode, b)
	}
	if resp, _ := f.raw(t, "GET", url, bob, nil, nil); resp.StatusCode != 404 {
		t.Fatalf("avatar after removal: %d, want 404", resp.StatusCode)
	}
}

// TestProfileChangesAreRateLimited: PATCH /me and PUT and DELETE /me/avatar
// share one bucket per user, ProfileChangeBurst at once, refilled at
// ProfileChangeRate a minute: over it 429, error 109, with Retry-After, and
// nothing changes. Another
// user's bucket is their own, and time refills it.
func TestProfileChangesAreRateLimited(t *testing.T) {
	f := newFixture(t)
	alice, bob := apiToken(t, f, "alice"), apiToken(t, f, "bob")
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	rename := func(tok, name string) (*http.Response, map[string]any) {
		return f.do(t, req{method: "PATCH", path: "/api/v1/me", header: bearer(tok), body: map[string]any{"display_name": name}})
	}
	for i := range accounts.ProfileChangeBurst - 2 {
		if resp, out := rename(alice, fmt.Sprint("Alice ", i)); resp.StatusCode != 200 {
			t.Fatalf("change %d: %d %v", i, resp.StatusCode, out)
		}
	}
	if resp, b := f.raw(t, "PUT", "/api/v1/me/avatar", alice, pngOf(t, 8, 8), nil); resp.StatusCode != 200 {
		t.Fatalf("avatar within the burst: %d %s", resp.StatusCode, b)
	}
	if resp, b := f.raw(t, "DELETE", "/api/v1/me/avatar", alice, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("avatar removal within the burst: %d %s", resp.StatusCode, b)
	}
	// The bucket is empty: one change comes back every 60/ProfileChangeRate s.
	retry := fmt.Sprint(60 / accounts.ProfileChangeRate)
	resp, out := rename(alice, "one too many")
	wantRateLimited(t, "PATCH /me over the limit", resp, out, retry)
	for _, method := range []string{"PUT", "DELETE"} {
		resp, b := f.raw(t, method, "/api/v1/me/avatar", alice, pngOf(t, 8, 8), nil)
		var out map[string]any
		_ = json.Unmarshal(b, &out)
		wantRateLimited(t, method+" /me/avatar over the limit", resp, out, retry)
	}
	if _, out := f.do(t, req{method: "GET", path: "/api/v1/me", header: bearer(alice)}); out["user"].(map[string]any)["display_name"] != fmt.Sprint("Alice ", accounts.ProfileChangeBurst-3) {
		t.Fatalf("a refused change changed the profile: %v", out)
	}
	if resp, out := rename(bob, "Bob"); resp.StatusCode != 200 {
		t.Fatalf("another user's change: %d %v", resp.StatusCode, out)
	}
	f.clock.Add(time.Minute / accounts.ProfileChangeRate)
	if resp, out := rename(alice, "Alice again"); resp.StatusCode != 200 {
		t.Fatalf("after the refill: %d %v", resp.StatusCode, out)
	}
	resp, out = rename(alice, "and again")
	wantRateLimited(t, "the second change after one refill", resp, out, retry)
}
