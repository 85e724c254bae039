package accounts

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/auth"
	"github.com/sori-dev/sori/internal/store"
	"github.com/sori-dev/sori/internal/store/sqlite"
)

type fixture struct {
	svc *Service
	st  store.Store
	v   *auth.Verifier
	srv *httptest.Server
	now time.Time
}

// newFixture runs the account endpoints on a real loopback server over a
// real SQLite file.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sori.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	v, err := auth.NewVerifier(auth.VerifierConfig{HMACSecret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Config{Store: st, Hasher: newTestHasher(t, fastParams), Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Routes(mux.Handle)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &fixture{svc: svc, st: st, v: v, srv: srv, now: time.Now()}
}

type req struct {
	method, path string
	body         any
	cookies      []*http.Cookie
	header       map[string]string
}

func (f *fixture) do(t *testing.T, r req) (*http.Response, map[string]any) {
	t.Helper()
	var body io.Reader
	if r.body != nil {
		b, _ := json.Marshal(r.body)
		body = strings.NewReader(string(b))
	}
	hr, _ := http.NewRequest(r.method, f.srv.URL+r.path, body)
	if r.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	for _, c := range r.cookies {
		hr.AddCookie(c)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

func errCode(m map[string]any) int {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(float64)
	return int(c)
}

func cookie(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestSignupLoginCookieAndCSRF(t *testing.T) {
	f := newFixture(t)
	resp, out := f.do(t, req{method: "POST", path: "/api/v1/auth/signup", body: map[string]string{"username": "Alice", "password": "secret-pass"}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("signup: %d %v", resp.StatusCode, out)
	}
	sc := cookie(resp, SessionCookie)
	if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Secure {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax, not Secure over plain HTTP", sc)
	}
	csrf := out["csrf_token"].(string)
	if cc := cookie(resp, CSRFCookie); cc == nil || cc.HttpOnly || cc.Value != csrf {
		t.Fatalf("csrf cookie %+v: want readable by script and equal to the body's token", cc)
	}

	// A safe method needs only the cookie.
	resp, out = f.do(t, req{method: "GET", path: "/api/v1/me", cookies: []*http.Cookie{sc}})
	if resp.StatusCode != 200 || out["user"].(map[string]any)["username"] != "Alice" {
		t.Fatalf("me: %d %v", resp.StatusCode, out)
	}
	// An unsafe method with the cookie alone is what a cross-site form
	// would send: refused.
	resp, out = f.do(t, req{method: "POST", path: "/api/v1/auth/connect-token", cookies: []*http.Cookie{sc}})
	if resp.StatusCode != http.StatusForbidden || errCode(out) != 104 {
		t.Fatalf("unsafe method without CSRF header: %d %v", resp.StatusCode, out)
	}
	resp, out = f.do(t, req{method: "POST", path: "/api/v1/auth/connect-token", cookies: []*http.Cookie{sc}, header: map[string]string{CSRFHeader: csrf + "x"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("wrong CSRF header: %d %v", resp.StatusCode, out)
	}
	resp, out = f.do(t, req{method: "POST", path: "/api/v1/auth/connect-token", cookies: []*http.Cookie{sc}, header: map[string]string{CSRFHeader: csrf}})
	if resp.StatusCode != 200 {
		t.Fatalf("connect-token: %d %v", resp.StatusCode, out)
	}
	claims, err := f.v.Verify(out["token"].(string))
	if err != nil || claims.User() != "Alice" || len(claims.Channels) != 0 || len(claims.Publish) != 0 {
		t.Fatalf("minted token: claims %+v err %v; want subject Alice and no grants", claims, err)
	}

	// Login is case-insensitive on the name and answers with a new session.
	resp, out = f.do(t, req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"username": "alice", "password": "secret-pass"},
		header: map[string]string{"X-Forwarded-Proto": "https"}})
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d %v", resp.StatusCode, out)
	}
	if c := cookie(resp, SessionCookie); c == nil || !c.Secure {
		t.Fatalf("session cookie behind a TLS proxy must be Secure: %+v", c)
	}

	// Logout ends the session: the cookie no longer works.
	resp, _ = f.do(t, req{method: "POST", path: "/api/v1/auth/logout", cookies: []*http.Cookie{sc}, header: map[string]string{CSRFHeader: csrf}})
	if resp.StatusCode != 200 {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp, _ = f.do(t, req{method: "GET", path: "/api/v1/me", cookies: []*http.Cookie{sc}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("me after logout: %d, want 401", resp.StatusCode)
	}
}

func TestSignupValidation(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		body   any
		ctype  bool
		status int
		code   int
	}{
		{map[string]string{"username": "a", "password": "secret-pass"}, true, 400, 101},
		{map[string]string{"username": "bob", "password": "short"}, true, 400, 101},
		{map[string]string{"username": "bob\u0000", "password": "secret-pass"}, true, 400, 101},
		{map[string]string{"username": "bob", "password": "secret-pass", "kind": "cookie"}, true, 400, 101},
		{"not an object", true, 400, 101},
	} {
		resp, out := f.do(t, req{method: "POST", path: "/api/v1/auth/signup", body: c.body})
		if resp.StatusCode != c.status || errCode(out) != c.code {
			t.Errorf("signup %v: %d %v, want %d/%d", c.body, resp.StatusCode, out, c.status, c.code)
		}
	}
	// A form post (no JSON content type) is refused: no login CSRF by forms.
	hr, _ := http.NewRequest("POST", f.srv.URL+"/api/v1/auth/signup", strings.NewReader(`{"username":"bob","password":"secret-pass"}`))
	hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("form-encoded signup: %d, want 400", resp.StatusCode)
	}
	f.do(t, req{method: "POST", path: "/api/v1/auth/signup", body: map[string]string{"username": "bob", "password": "secret-pass"}})
	resp, out := f.do(t, req{method: "POST", path: "/api/v1/auth/signup", body: map[string]string{"username": "BOB", "password": "secret-pass"}})
	if resp.StatusCode != http.StatusConflict || errCode(out) != 118 {
		t.Fatalf("duplicate username (other case): %d %v, want 409/118", resp.StatusCode, out)
	}
}

func TestLoginFailuresLookAlike(t *testing.T) {
	f := newFixture(t)
	if _, err := f.svc.CreateUser(context.Background(), "carol", "secret-pass", false); err != nil {
		t.Fatal(err)
	}
	_, wrong := f.do(t, req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"username": "carol", "password": "wrong-pass"}})
	resp, unknown := f.do(t, req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"username": "nobody", "password": "wrong-pass"}})
	if resp.StatusCode != http.StatusUnauthorized || errCode(wrong) != 104 || mustJSON(wrong) != mustJSON(unknown) {
		t.Fatalf("wrong password %v and unknown user %v must get the same 401 answer", wrong, unknown)
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestAPITokensAndJWT(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.svc.CreateUser(ctx, "dave", "secret-pass", true); err != nil {
		t.Fatal(err)
	}
	resp, out := f.do(t, req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"username": "dave", "password": "secret-pass", "kind": "api", "label": "ci"}})
	if resp.StatusCode != 200 || cookie(resp, SessionCookie) != nil {
		t.Fatalf("api login: %d %v (no cookie expected)", resp.StatusCode, out)
	}
	tok := out["token"].(string)
	bearer := map[string]string{"Authorization": "Bearer " + tok}
	// Bearer requests need no CSRF header.
	resp, out = f.do(t, req{method: "POST", path: "/api/v1/auth/tokens", body: map[string]any{"label": "second", "ttl_seconds": 60}, header: bearer})
	if resp.StatusCode != 201 || !strings.HasPrefix(out["token"].(string), "sori_") {
		t.Fatalf("create token: %d %v", resp.StatusCode, out)
	}
	second := out["id"].(string)
	resp, out = f.do(t, req{method: "GET", path: "/api/v1/auth/tokens", header: bearer})
	if resp.StatusCode != 200 || len(out["tokens"].([]any)) != 2 || strings.Contains(mustJSON(out), tok) {
		t.Fatalf("list tokens: %d %v (two, without secrets)", resp.StatusCode, out)
	}
	if resp, _ = f.do(t, req{method: "DELETE", path: "/api/v1/auth/tokens/" + second, header: bearer}); resp.StatusCode != 200 {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if resp, _ = f.do(t, req{method: "DELETE", path: "/api/v1/auth/tokens/" + second, header: bearer}); resp.StatusCode != 404 {
		t.Fatalf("revoke twice: %d, want 404", resp.StatusCode)
	}
	// A made-up token of the right shape is refused.
	if resp, _ = f.do(t, req{method: "GET", path: "/api/v1/me", header: map[string]string{"Authorization": "Bearer sori_" + strings.Repeat("A", 43)}}); resp.StatusCode != 401 {
		t.Fatalf("unknown token: %d, want 401", resp.StatusCode)
	}

	// An externally minted JWT is a chat identity; a new subject gets an
	// account without a password.
	jwt, _ := f.v.Mint(auth.NewClaims("erin", time.Hour, time.Now()))
	resp, out = f.do(t, req{method: "GET", path: "/api/v1/me", header: map[string]string{"Authorization": "Bearer " + jwt}})
	if resp.StatusCode != 200 || out["user"].(map[string]any)["username"] != "erin" || out["auth"] != "jwt" {
		t.Fatalf("me with JWT: %d %v", resp.StatusCode, out)
	}
	u, err := f.st.GetUserByName(ctx, "erin")
	if err != nil || u.PasswordHash != "" {
		t.Fatalf("provisioned user %+v err %v: want no password", u, err)
	}
	if _, err := f.svc.Login(ctx, "erin", ""); err == nil {
		t.Fatal("a provisioned account must not log in with an empty password")
	}
	expired, _ := f.v.Mint(auth.NewClaims("erin", time.Minute, time.Now().Add(-time.Hour)))
	if resp, out = f.do(t, req{method: "GET", path: "/api/v1/me", header: map[string]string{"Authorization": "Bearer " + expired}}); resp.StatusCode != 401 || errCode(out) != 112 {
		t.Fatalf("expired JWT: %d %v, want 401/112", resp.StatusCode, out)
	}
	bad, _ := f.v.Mint(auth.NewClaims("not a name!", time.Hour, time.Now()))
	if resp, _ = f.do(t, req{method: "GET", path: "/api/v1/me", header: map[string]string{"Authorization": "Bearer " + bad}}); resp.StatusCode != 401 {
		t.Fatalf("JWT with an invalid subject: %d, want 401", resp.StatusCode)
	}
	other, _ := auth.NewVerifier(auth.VerifierConfig{HMACSecret: []byte(strings.Repeat("z", 32))})
	forged, _ := other.Mint(auth.NewClaims("dave", time.Hour, time.Now()))
	if resp, out = f.do(t, req{method: "GET", path: "/api/v1/me", header: map[string]string{"Authorization": "Bearer " + forged}}); resp.StatusCode != 401 || errCode(out) != 113 {
		t.Fatalf("JWT signed with another key: %d %v, want 401/113", resp.StatusCode, out)
	}
}

func TestPasswordChangeEndsSessions(t *testing.T) {
	f := newFixture(t)
	resp, out := f.do(t, req{method: "POST", path: "/api/v1/auth/signup", body: map[string]string{"username": "frank", "password": "old-password"}})
	sc, csrf := cookie(resp, SessionCookie), out["csrf_token"].(string)
	_, out = f.do(t, req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"username": "frank", "password": "old-password", "kind": "api"}})
	apiTok := out["token"].(string)
	h := map[string]string{CSRFHeader: csrf}
	if resp, _ = f.do(t, req{method: "PUT", path: "/api/v1/me/password", cookies: []*http.Cookie{sc}, header: h,
		body: map[string]string{"old_password": "wrong-password", "new_password": "new-password"}}); resp.StatusCode != 403 {
		t.Fatalf("change with a wrong old password: %d, want 403", resp.StatusCode)
	}
	resp, out = f.do(t, req{method: "PUT", path: "/api/v1/me/password", cookies: []*http.Cookie{sc}, header: h,
		body: map[string]string{"old_password": "old-password", "new_password": "new-password"}})
	if resp.StatusCode != 200 || cookie(resp, SessionCookie) == nil {
		t.Fatalf("change password: %d %v (a fresh cookie expected)", resp.StatusCode, out)
	}
	if resp, _ = f.do(t, req{method: "GET", path: "/api/v1/me", cookies: []*http.Cookie{sc}}); resp.StatusCode != 401 {
		t.Fatalf("old cookie after password change: %d, want 401", resp.StatusCode)
	}
	if resp, _ = f.do(t, req{method: "GET", path: "/api/v1/me", header: map[string]string{"Authorization": "Bearer " + apiTok}}); resp.StatusCode != 401 {
		t.Fatalf("old API token after password change: %d, want 401", resp.StatusCode)
	}
	if _, err := f.svc.Login(context.Background(), "frank", "new-password"); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
}

func TestClosedSignup(t *testing.T) {
	f := newFixture(t)
	f.svc.cfg.ClosedSignup = true
	resp, out := f.do(t, req{method: "POST", path: "/api/v1/auth/signup", body: map[string]string{"username": "gina", "password": "secret-pass"}})
	if resp.StatusCode != 403 || errCode(out) != 104 {
		t.Fatalf("closed signup: %d %v", resp.StatusCode, out)
	}
}
