package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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
	"github.com/sori-dev/sori/internal/chat"
	"github.com/sori-dev/sori/internal/chat/rest"
	"github.com/sori-dev/sori/internal/httpx"
	"github.com/sori-dev/sori/internal/hub"
	"github.com/sori-dev/sori/internal/ratelimit"
	"github.com/sori-dev/sori/internal/store/sqlite"
)

// clock is a fake clock for the rate limiters; it moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is the chat REST API on a real loopback server over a real SQLite
// file. Users authenticate with JWTs, which provision their accounts.
type env struct {
	t     *testing.T
	url   string
	v     *auth.Verifier
	clock *clock
}

const maxFile = 1 << 10

func start(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "sori.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	h, err := hub.New(hub.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	v, err := auth.NewVerifier(auth.VerifierConfig{HMACSecret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	hasher, err := accounts.NewHasher(accounts.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 0)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := accounts.New(accounts.Config{Store: st, Hasher: hasher, Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := chat.New(chat.Config{Store: st, Hub: h, Resolve: acc.UserForSubject, DataDir: dir, MaxFileSize: maxFile})
	if err != nil {
		t.Fatal(err)
	}
	h.SetBackend(chat.Namespace, svc.Backend())
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	api := rest.New(rest.Config{Chat: svc, Accounts: acc,
		Typing: ratelimit.New(ratelimit.Config{Rate: 2, Burst: 2, Now: c.now}),
		Read:   ratelimit.New(ratelimit.Config{Rate: 5, Burst: 3, Now: c.now}),
		Writes: ratelimit.New(ratelimit.Config{Rate: 10, Burst: 20, Now: c.now})})
	mux := http.NewServeMux()
	api.Routes(mux.Handle)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{t: t, url: srv.URL, v: v, clock: c}
}

// user returns a bearer token for name.
func (e *env) user(name string) string {
	tok, err := e.v.Mint(auth.NewClaims(name, time.Hour, time.Now()))
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// call sends body (JSON unless it is an io.Reader) and returns the
// response and its decoded JSON body.
func (e *env) call(token, method, path string, body any) (*http.Response, map[string]any) {
	e.t.Helper()
	var rd io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case io.Reader:
		rd, ctype = b, "application/octet-stream"
	default:
		js, _ := json.Marshal(b)
		rd = bytes.NewReader(js)
	}
	req, _ := http.NewRequest(method, e.url+path, rd)
	if rd != nil {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

func (e *env) want(status int, token, method, path string, body any) map[string]any {
	e.t.Helper()
	resp, out := e.call(token, method, path, body)
	if resp.StatusCode != status {
		e.t.Fatalf("%s %s: %d %v, want %d", method, path, resp.StatusCode, out, status)
	}
	return out
}

func code(m map[string]any) int {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(float64)
	return int(c)
}

func (e *env) room(owner string) int64 {
	e.t.Helper()
	out := e.want(http.StatusCreated, owner, "POST", "/api/v1/rooms", map[string]any{"name": "team"})
	return int64(out["id"].(float64))
}

func TestTypingAndReadReceiptsAreRateLimitedPerUser(t *testing.T) {
	e := start(t)
	alice, bob := e.user("alice"), e.user("bob")
	rid := e.room(alice)
	e.want(http.StatusOK, bob, "POST", fmt.Sprintf("/api/v1/rooms/%d/join", rid), nil)
	e.want(http.StatusCreated, alice, "POST", fmt.Sprintf("/api/v1/rooms/%d/messages", rid), map[string]any{"text": "hi"})

	for _, c := range []struct {
		path  string
		body  any
		burst int
		retry string
	}{
		{"typing", nil, 2, "1"},                    // 2 a second
		{"read", map[string]any{"seq": 1}, 3, "1"}, // 5 a second
	} {
		path := fmt.Sprintf("/api/v1/rooms/%d/%s", rid, c.path)
		for range c.burst {
			e.want(http.StatusOK, alice, "POST", path, c.body)
		}
		resp, out := e.call(alice, "POST", path, c.body)
		if resp.StatusCode != http.StatusTooManyRequests || code(out) != 109 || resp.Header.Get("Retry-After") != c.retry {
			t.Fatalf("%s over the burst: %d %v Retry-After %q, want 429/109, Retry-After %s",
				c.path, resp.StatusCode, out, resp.Header.Get("Retry-After"), c.retry)
		}
		// Each user has a bucket of their own.
		e.want(http.StatusOK, bob, "POST", path, c.body)
	}
	// A second later both refilled.
	e.clock.add(time.Second)
	e.want(http.StatusOK, alice, "POST", fmt.Sprintf("/api/v1/rooms/%d/typing", rid), nil)
	e.want(http.StatusOK, alice, "POST", fmt.Sprintf("/api/v1/rooms/%d/read", rid), map[string]any{"seq": 1})
}

// Changing requests (posts here) spend a per-user write budget, as a
// real-time connection's commands spend the command rate; reads do not.
func TestWritesAreRateLimitedPerUser(t *testing.T) {
	e := start(t)
	alice, bob := e.user("alice"), e.user("bob")
	rid := e.room(alice) // the first write
	e.want(http.StatusOK, bob, "POST", fmt.Sprintf("/api/v1/rooms/%d/join", rid), nil)
	path := fmt.Sprintf("/api/v1/rooms/%d/messages", rid)
	for range 19 {
		e.want(http.StatusCreated, alice, "POST", path, map[string]any{"text": "hi"})
	}
	resp, out := e.call(alice, "POST", path, map[string]any{"text": "one too many"})
	if resp.StatusCode != http.StatusTooManyRequests || code(out) != 109 || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("post over the burst: %d %v Retry-After %q, want 429/109, Retry-After 1", resp.StatusCode, out, resp.Header.Get("Retry-After"))
	}
	e.want(http.StatusOK, alice, "GET", path, nil)                                // reads are not writes
	e.want(http.StatusCreated, bob, "POST", path, map[string]any{"text": "mine"}) // a bucket per user
	e.clock.add(time.Second)                                                      // 10 more
	for range 10 {
		e.want(http.StatusCreated, alice, "POST", path, map[string]any{"text": "later"})
	}
	e.want(http.StatusTooManyRequests, alice, "POST", path, map[string]any{"text": "again too many"})
	if msgs := e.want(http.StatusOK, alice, "GET", path+"?limit=100", nil)["messages"].([]any); len(msgs) != 30 {
		t.Fatalf("%d messages stored, want the 30 allowed (19 + bob's + 10)", len(msgs))
	}
}

func TestOversizedBodyClosesTheConnection(t *testing.T) {
	e := start(t)
	alice := e.user("alice")
	rid := e.room(alice)
	big := map[string]any{"text": strings.Repeat("x", httpx.MaxJSONBody)}
	resp, out := e.call(alice, "POST", fmt.Sprintf("/api/v1/rooms/%d/messages", rid), big)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || code(out) != 110 || !resp.Close {
		t.Fatalf("oversized JSON: %d %v close=%v, want 413/110 and the connection closed", resp.StatusCode, out, resp.Close)
	}
	// An upload without a Content-Length (chunked) is cut at the limit too.
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write(bytes.Repeat([]byte("y"), 4*maxFile))
		_ = pw.Close()
	}()
	resp, out = e.call(alice, "POST", fmt.Sprintf("/api/v1/rooms/%d/files?name=big.txt", rid), pr)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || code(out) != 110 || !resp.Close {
		t.Fatalf("oversized upload: %d %v close=%v, want 413/110 and the connection closed", resp.StatusCode, out, resp.Close)
	}
	// A file of exactly the limit fits.
	e.want(http.StatusCreated, alice, "POST", fmt.Sprintf("/api/v1/rooms/%d/files?name=ok.txt", rid), io.MultiReader(bytes.NewReader(bytes.Repeat([]byte("z"), maxFile))))
	// The file listing tells the limit, so a client can check before uploading.
	if got := e.want(http.StatusOK, alice, "GET", fmt.Sprintf("/api/v1/rooms/%d/files?limit=1", rid), nil)["max_size"]; got != float64(maxFile) {
		t.Fatalf("max_size %v, want %d", got, maxFile)
	}
}

func TestFilesArePaged(t *testing.T) {
	e := start(t)
	alice := e.user("alice")
	rid := e.room(alice)
	for i := range 3 {
		e.want(http.StatusCreated, alice, "POST", fmt.Sprintf("/api/v1/rooms/%d/files?name=f%d.txt", rid, i), strings.NewReader("hello"))
	}
	list := func(query string) []any {
		return e.want(http.StatusOK, alice, "GET", fmt.Sprintf("/api/v1/rooms/%d/files?%s", rid, query), nil)["files"].([]any)
	}
	if all := list(""); len(all) != 3 {
		t.Fatalf("files: %v, want 3", all)
	}
	first := list("limit=2")
	if len(first) != 2 {
		t.Fatalf("limit=2: %v", first)
	}
	last := first[1].(map[string]any)["id"].(string)
	second := list("limit=2&before=" + last)
	if len(second) != 1 || second[0].(map[string]any)["id"] == first[0].(map[string]any)["id"] || second[0].(map[string]any)["id"] == last {
		t.Fatalf("page after %s: %v, want the one file not on the first page", last, second)
	}
	resp, out := e.call(alice, "GET", fmt.Sprintf("/api/v1/rooms/%d/files?before=nope", rid), nil)
	if resp.StatusCode != http.StatusBadRequest || code(out) != 101 {
		t.Fatalf("unknown cursor: %d %v, want 400/101", resp.StatusCode, out)
	}
}
