package rest

import (
	"net/http"
	"sync"
	"testing"

	"github.com/sori-dev/sori/internal/accounts"
	"github.com/sori-dev/sori/internal/store"
)

// TestConnectionTokenCannotMintAndDiesWithRevocation is issue 9.1 at the
// HTTP level: a connection token may act as the user but never mint or
// change credentials, and it is refused once the user's password changes
// or they log out everywhere; a token minted after that works.
func TestConnectionTokenCannotMintAndDiesWithRevocation(t *testing.T) {
	var mu sync.Mutex
	var revoked []store.User
	f := newFixture(t, func(c *accounts.Config) {
		c.OnRevoke = func(u store.User) { mu.Lock(); revoked = append(revoked, u); mu.Unlock() }
	})
	resp, out := f.do(t, req{method: "POST", path: "/api/v1/auth/signup", body: map[string]string{"username": "frank", "password": "old-password"}})
	sc, csrf := cookie(resp, accounts.SessionCookie), out["csrf_token"].(string)
	withCookie := func(r req) req {
		r.cookies = []*http.Cookie{sc}
		r.header = map[string]string{accounts.CSRFHeader: csrf}
		return r
	}
	connectToken := func() string {
		t.Helper()
		resp, out := f.do(t, withCookie(req{method: "POST", path: "/api/v1/auth/connect-token"}))
		if resp.StatusCode != 200 {
			t.Fatalf("connect-token: %d %v", resp.StatusCode, out)
		}
		return out["token"].(string)
	}
	jwtTok := connectToken()
	asJWT := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

	if resp, out = f.do(t, req{method: "GET", path: "/api/v1/me", header: asJWT(jwtTok)}); resp.StatusCode != 200 || out["auth"] != "jwt" {
		t.Fatalf("me with the connection token: %d %v", resp.StatusCode, out)
	}
	for _, r := range []req{
		{method: "POST", path: "/api/v1/auth/connect-token"},
		{method: "POST", path: "/api/v1/auth/tokens", body: map[string]any{"label": "forever"}},
		{method: "PUT", path: "/api/v1/me/password", body: map[string]string{"old_password": "old-password", "new_password": "pwned-password"}},
		{method: "POST", path: "/api/v1/auth/logout-all"},
	} {
		r.header = asJWT(jwtTok)
		if resp, out = f.do(t, r); resp.StatusCode != 403 || errCode(out) != 104 {
			t.Fatalf("%s %s with a connection token: %d %v, want 403/104", r.method, r.path, resp.StatusCode, out)
		}
	}

	// The password changes: the old connection token is dead on REST.
	resp, out = f.do(t, withCookie(req{method: "PUT", path: "/api/v1/me/password",
		body: map[string]string{"old_password": "old-password", "new_password": "new-password"}}))
	if resp.StatusCode != 200 {
		t.Fatalf("change password: %d %v", resp.StatusCode, out)
	}
	if resp, out = f.do(t, req{method: "GET", path: "/api/v1/me", header: asJWT(jwtTok)}); resp.StatusCode != 401 || errCode(out) != 113 {
		t.Fatalf("me with the connection token after the password change: %d %v, want 401/113", resp.StatusCode, out)
	}
	mu.Lock()
	if len(revoked) != 1 || revoked[0].Username != "frank" || revoked[0].CredentialsGen != 1 {
		t.Fatalf("OnRevoke calls %+v, want frank at generation 1", revoked)
	}
	mu.Unlock()

	// A token minted after the change works; "log out everywhere" (from a
	// cookie) kills it and the cookie too.
	resp, out = f.do(t, req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"username": "frank", "password": "new-password"}})
	sc, csrf = cookie(resp, accounts.SessionCookie), out["csrf_token"].(string)
	fresh := connectToken()
	if resp, _ = f.do(t, req{method: "GET", path: "/api/v1/me", header: asJWT(fresh)}); resp.StatusCode != 200 {
		t.Fatalf("me with a token minted after the change: %d", resp.StatusCode)
	}
	if resp, out = f.do(t, withCookie(req{method: "POST", path: "/api/v1/auth/logout-all"})); resp.StatusCode != 200 {
		t.Fatalf("logout-all: %d %v", resp.StatusCode, out)
	}
	if resp, _ = f.do(t, req{method: "GET", path: "/api/v1/me", header: asJWT(fresh)}); resp.StatusCode != 401 {
		t.Fatalf("connection token after logout-all: %d, want 401", resp.StatusCode)
	}
	if resp, _ = f.do(t, req{method: "GET", path: "/api/v1/me", cookies: []*http.Cookie{sc}}); resp.StatusCode != 401 {
		t.Fatalf("cookie after logout-all: %d, want 401", resp.StatusCode)
	}
}
