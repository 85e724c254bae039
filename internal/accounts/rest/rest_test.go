package rest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/accounts"
	"github.com/sori-dev/sori/internal/auth"
	"github.com/sori-dev/sori/internal/store"
	"github.com/sori-dev/sori/internal/store/sqlite"
)

type fixture struct {
	svc   *accounts.Service
	st    store.Store
	v     *auth.Verifier
	srv   *httptest.Server
	now   time.Time
	clock *fakeClock
}

// fakeClock is the accounts.Service's clock in tests: it starts at the real time and
// moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newFixture runs the account endpoints on a real loopback server over a
// real SQLite file, with a fake clock; mutate (optional) adjusts the
// accounts.Service's config.
func newFixture(t *testing.T, mutate ...func(*accounts.Config)) *fixture {
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
	clock := &fakeClock{t: time.Now()}
	cfg := accounts.Config{Store: st, Hasher: newTestHasher(t), Verifier: v, Now: clock.Now}
	for _, m := range mutate {
		m(&cfg)
	}
	svc, err := accounts.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v.SetCheck(svc.CheckToken) // as the server wires it
	mux := http.NewServeMux()
	New(svc).Routes(mux.Handle)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &fixture{svc: svc, st: st, v: v, srv: srv, now: time.Now(), clock: clock}
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
	sc := cookie(resp, accounts.SessionCookie)
	if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Secure {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax, not Secure over plain HTTP", sc)
	}
	csrf := out["csrf_token"].(string)
	if cc := cookie(resp, accounts.CSRFCookie); cc == nil || cc.HttpOnly || cc.Value != csrf {
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
	resp, out = f.do(t, req{method: "POST", path: "/api/v1/auth/connect-token", cookies: []*http.Cookie{sc}, header: map[string]string{accounts.CSRFHeader: csrf + "x"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("wrong CSRF header: %d %v", resp.StatusCode, out)
	}
	resp, out = f.do(t, req{method: "POST", path: "/api/v1/auth/connect-token", cookies: []*http.Cookie{sc}, header: map[string]string{accounts.CSRFHeader: csrf}})
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
	if c := cookie(resp, accounts.SessionCookie); c == nil || !c.Secure {
		t.Fatalf("session cookie behind a TLS proxy must be Secure: %+v", c)
	}

	// Logout ends the session: the cookie no longer works.
	resp, _ = f.do(t, req{method: "POST", path: "/api/v1/auth/logout", cookies: []*http.Cookie{sc}, header: map[string]string{accounts.CSRFHeader: csrf}})
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
	if resp.StatusCode != 200 || cookie(resp, accounts.SessionCookie) != nil {
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
	sc, csrf := cookie(resp, accounts.SessionCookie), out["csrf_token"].(string)
	_, out = f.do(t, req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"username": "frank", "password": "old-password", "kind": "api"}})
	apiTok := out["token"].(string)
	h := map[string]string{accounts.CSRFHeader: csrf}
	if resp, _ = f.do(t, req{method: "PUT", path: "/api/v1/me/password", cookies: []*http.Cookie{sc}, header: h,
		body: map[string]string{"old_password": "wrong-password", "new_password": "new-password"}}); resp.StatusCode != 403 {
		t.Fatalf("change with a wrong old password: %d, want 403", resp.StatusCode)
	}
	resp, out = f.do(t, req{method: "PUT", path: "/api/v1/me/password", cookies: []*http.Cookie{sc}, header: h,
		body: map[string]string{"old_password": "old-password", "new_password": "new-password"}})
	if resp.StatusCode != 200 || cookie(resp, accounts.SessionCookie) == nil {
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
	f := newFixture(t, func(c *accounts.Config) { c.Registration = accounts.RegistrationClosed })
	resp, out := f.do(t, req{method: "POST", path: "/api/v1/auth/signup", body: map[string]string{"username": "gina", "password": "secret-pass"}})
	if resp.StatusCode != 403 || errCode(out) != 104 {
		t.Fatalf("closed signup: %d %v", resp.StatusCode, out)
	}
}

func login(name, password string) req {
	return req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"username": name, "password": password}}
}

// wantRateLimited checks a 429 with error 109 and a Retry-After of retry
// seconds.
func wantRateLimited(t *testing.T, what string, resp *http.Response, out map[string]any, retry string) {
	t.Helper()
	if resp.StatusCode != http.StatusTooManyRequests || errCode(out) != 109 || resp.Header.Get("Retry-After") != retry {
		t.Fatalf("%s: %d %v Retry-After %q, want 429/109 with Retry-After %s", what, resp.StatusCode, out, resp.Header.Get("Retry-After"), retry)
	}
}

func TestLoginGuessesPerUsernameAreRateLimited(t *testing.T) {
	// 60 a minute and 8 at once per address; per username 30 a minute
	// (one every 2 s) and 2 at once.
	f := newFixture(t, func(c *accounts.Config) { c.LoginRate, c.LoginBurst = 60, 8 })
	if _, err := f.svc.CreateUser(context.Background(), "carol", "secret-pass", false); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if resp, out := f.do(t, login("carol", "guess")); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d %v, want 401", i+1, resp.StatusCode, out)
		}
	}
	resp, out := f.do(t, login("carol", "guess"))
	wantRateLimited(t, "third guess", resp, out, "2")
	// The right password is refused too while the name's bucket is empty
	// (else a guess would tell right from wrong), and the name is folded.
	resp, out = f.do(t, login("CAROL", "secret-pass"))
	wantRateLimited(t, "right password, other case", resp, out, "2")
	// Other names have buckets of their own.
	if resp, out = f.do(t, login("nobody", "guess")); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("another name: %d %v, want 401", resp.StatusCode, out)
	}

	// One token later the right password gets in, and a success gives its
	// token back: the owner can log in again at once.
	f.clock.Add(2 * time.Second)
	for i := range 2 {
		if resp, out = f.do(t, login("carol", "secret-pass")); resp.StatusCode != http.StatusOK {
			t.Fatalf("login %d with the right password: %d %v", i+1, resp.StatusCode, out)
		}
	}
}

func TestPasswordAttemptsPerAddressAreRateLimited(t *testing.T) {
	// 6 a minute (one every 10 s), 4 at once.
	f := newFixture(t, func(c *accounts.Config) { c.LoginRate, c.LoginBurst = 6, 4 })
	resp, out := f.do(t, req{method: "POST", path: "/api/v1/auth/signup", body: map[string]string{"username": "hank", "password": "old-password"}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("signup: %d %v", resp.StatusCode, out)
	}
	sc, h := cookie(resp, accounts.SessionCookie), map[string]string{accounts.CSRFHeader: out["csrf_token"].(string)}
	// Sign-up, login (of any name) and password change share the address's
	// bucket; malformed requests count too.
	f.do(t, req{method: "POST", path: "/api/v1/auth/signup", body: "not an object"})
	f.do(t, login("ivy", "guess"))
	resp, out = f.do(t, req{method: "PUT", path: "/api/v1/me/password", cookies: []*http.Cookie{sc}, header: h,
		body: map[string]string{"old_password": "guess-one", "new_password": "new-password"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("password change with a wrong old password: %d %v, want 403", resp.StatusCode, out)
	}
	resp, out = f.do(t, req{method: "PUT", path: "/api/v1/me/password", cookies: []*http.Cookie{sc}, header: h,
		body: map[string]string{"old_password": "old-password", "new_password": "new-password"}})
	wantRateLimited(t, "fifth attempt", resp, out, "10")
	resp, out = f.do(t, req{method: "POST", path: "/api/v1/auth/signup", body: map[string]string{"username": "jack", "password": "secret-pass"}})
	wantRateLimited(t, "sign-up after the burst", resp, out, "10")
	if _, err := f.st.GetUserByName(context.Background(), "jack"); err == nil {
		t.Fatal("a rate-limited sign-up created the user")
	}
	// The wrong old password also used hank's own bucket (3 a minute, 1 at
	// once): a stolen session cannot guess the password either.
	f.clock.Add(10 * time.Second)
	resp, out = f.do(t, req{method: "PUT", path: "/api/v1/me/password", cookies: []*http.Cookie{sc}, header: h,
		body: map[string]string{"old_password": "old-password", "new_password": "new-password"}})
	wantRateLimited(t, "second password change", resp, out, "10")
	f.clock.Add(10 * time.Second)
	resp, out = f.do(t, req{method: "PUT", path: "/api/v1/me/password", cookies: []*http.Cookie{sc}, header: h,
		body: map[string]string{"old_password": "old-password", "new_password": "new-password"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("password change after the wait: %d %v", resp.StatusCode, out)
	}
}

func TestAPITokensPerUserAreCapped(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	u, err := f.svc.CreateUser(ctx, "kim", "secret-pass", false)
	if err != nil {
		t.Fatal(err)
	}
	var first string
	for i := range accounts.MaxAPITokens {
		ttl := time.Duration(0)
		if i == 0 {
			ttl = time.Minute
		}
		tok, _, err := f.svc.CreateAPIToken(ctx, u, "t", ttl)
		if err != nil {
			t.Fatalf("token %d: %v", i+1, err)
		}
		if i == 0 {
			first = tok
		}
	}
	bearer := map[string]string{"Authorization": "Bearer " + first}
	resp, out := f.do(t, req{method: "POST", path: "/api/v1/auth/tokens", body: map[string]any{"label": "one too many"}, header: bearer})
	if resp.StatusCode != http.StatusConflict || errCode(out) != 118 {
		t.Fatalf("token %d: %d %v, want 409/118", accounts.MaxAPITokens+1, resp.StatusCode, out)
	}
	resp, out = f.do(t, req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"username": "kim", "password": "secret-pass", "kind": "api"}})
	if resp.StatusCode != http.StatusConflict || errCode(out) != 118 {
		t.Fatalf("api login over the cap: %d %v, want 409/118", resp.StatusCode, out)
	}
	// An expired token no longer counts.
	f.clock.Add(2 * time.Minute)
	if _, _, err := f.svc.CreateAPIToken(ctx, u, "after expiry", 0); err != nil {
		t.Fatalf("a token after one expired: %v", err)
	}
}

// newTestHasher hashes with parameters that keep tests quick; the format
// and code paths are the same as the defaults'.
func newTestHasher(t *testing.T) *accounts.Hasher {
	t.Helper()
	h, err := accounts.NewHasher(accounts.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 2)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// A user's browser sessions are bounded: a login at the cap ends the
// oldest one instead of adding a row (only failed logins are rate limited,
// so a script logging in with the right password could otherwise grow the
// sessions table without end), and is never refused.
func TestWebSessionsPerUserAreBounded(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	u, err := f.st.CreateUser(ctx, store.User{Username: "alice", PasswordHash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	var toks []string
	for range accounts.MaxWebSessions + 2 {
		f.clock.Add(time.Millisecond) // each a later session
		tok, _, err := f.svc.StartSession(ctx, u)
		if err != nil {
			t.Fatalf("login %d: %v", len(toks)+1, err)
		}
		toks = append(toks, tok)
	}
	list, err := f.st.ListSessions(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != accounts.MaxWebSessions {
		t.Fatalf("%d browser sessions stored after %d logins, want %d", len(list), len(toks), accounts.MaxWebSessions)
	}
	for i, tok := range toks {
		_, err := f.st.GetSession(ctx, tok)
		if gone := i < 2; gone != errors.Is(err, store.ErrNotFound) {
			t.Fatalf("session of login %d: %v (want gone: %v, the two oldest)", i+1, err, gone)
		}
	}
}
