package server_test

import (
	"cmp"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/sori-dev/sori/internal/config"
	"github.com/sori-dev/sori/internal/server"
)

// authzRow is how one route is authorized, and a request that shows it.
type authzRow struct {
	path string // with the fixture's ids filled in
	body string // JSON body of POST, PUT and PATCH requests; "" = {}
	// anon is the status a request without credentials gets: 401 for a
	// route behind a login or key; for a public route, what it serves.
	anon int
	// eve, when not 0, is the status eve gets: a signed-up user who is
	// not a member of alice's private room, not a server admin, and names
	// alice's things (her token, her file, her stream key) by their ids.
	eve int
	// why says why a route needs no credentials, or where the rest of its
	// check lives.
	why string
}

// TestEveryEndpointIsAuthorized is the authorization audit of the HTTP
// surface: every route the server registers (SFU and WHIP included) has a
// row here, and the row's requests are made. A route added without a row
// fails the test, so a new endpoint cannot ship without someone deciding,
// in writing, who may call it.
func TestEveryEndpointIsAuthorized(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.SFUListen = "127.0.0.1:0" })
	alice, eve := signup(t, ts.URL, "alice"), signup(t, ts.URL, "eve")
	room := alice.call(t, ts, "POST", "/api/v1/rooms", map[string]any{"name": "team", "kind": "private"}, http.StatusCreated)
	id := int64(room["id"].(float64))
	r := fmt.Sprintf("/api/v1/rooms/%d", id)
	alice.call(t, ts, "POST", r+"/messages", map[string]any{"text": "secret"}, http.StatusCreated)
	file := uploadFile(t, ts, alice, id, "f.txt", []byte("secret file"), http.StatusCreated)
	tok := alice.call(t, ts, "POST", "/api/v1/auth/tokens", map[string]any{"name": "ci"}, http.StatusCreated)
	tokID := tok["id"].(string)
	key := alice.call(t, ts, "POST", r+"/stream-keys", map[string]any{}, http.StatusCreated)
	keyID := key["id"].(string)
	sfuRoom := fmt.Sprint(id)

	public := func(path string, status int, why string) authzRow {
		return authzRow{path: path, anon: status, why: why}
	}
	login := func(path string, eve int) authzRow { return authzRow{path: path, anon: 401, eve: eve} }
	rows := map[string]authzRow{
		// Public by design.
		"GET /":                               public("/", 200, "the web app's static files"),
		"GET /sdk/":                           public("/sdk/index.js", 200, "the JS SDK's static files"),
		"GET /healthz":                        public("/healthz", 200, "liveness probe"),
		"GET /readyz":                         public("/readyz", 200, "readiness probe"),
		"GET /metrics":                        public("/metrics", 200, "counts only, no user data (docs/operations.md: keep it off the public network)"),
		"GET /api/v1/auth/registration":       public("/api/v1/auth/registration", 200, "the sign-up page asks which form to show"),
		"POST /api/v1/auth/signup":            public("/api/v1/auth/signup", 400, "creates an account; --registration and --login-rate bound it"),
		"POST /api/v1/auth/login":             public("/api/v1/auth/login", 401, "takes a password (none here); --login-rate bounds it"),
		"GET /api/":                           public("/api/nothing", 404, "unknown /api/ paths: a JSON 404"),
		"POST /api/":                          public("/api/nothing", 404, "unknown /api/ paths: a JSON 404"),
		"PUT /api/":                           public("/api/nothing", 404, "unknown /api/ paths: a JSON 404"),
		"PATCH /api/":                         public("/api/nothing", 404, "unknown /api/ paths: a JSON 404"),
		"DELETE /api/":                        public("/api/nothing", 404, "unknown /api/ paths: a JSON 404"),
		"OPTIONS /http/open":                  public("/http/open", 403, "CORS preflight from an origin not in --allowed-origins: refused"),
		"OPTIONS /http/send":                  public("/http/send", 403, "CORS preflight from an origin not in --allowed-origins: refused"),
		"OPTIONS /http/close":                 public("/http/close", 403, "CORS preflight from an origin not in --allowed-origins: refused"),
		"OPTIONS /sse":                        public("/sse", 403, "CORS preflight from an origin not in --allowed-origins: refused"),
		"OPTIONS /poll":                       public("/poll", 403, "CORS preflight from an origin not in --allowed-origins: refused"),
		"OPTIONS /rtc/whip/{room}":            public("/rtc/whip/"+sfuRoom, 204, "CORS preflight: does nothing"),
		"OPTIONS /rtc/whip/{room}/{id}":       public("/rtc/whip/"+sfuRoom+"/x", 204, "CORS preflight: does nothing"),
		"OPTIONS /rtc/whep/{room}":            public("/rtc/whep/"+sfuRoom, 204, "CORS preflight: does nothing"),
		"OPTIONS /rtc/whep/{room}/{id}":       public("/rtc/whep/"+sfuRoom+"/x", 204, "CORS preflight: does nothing"),
		"GET /api/v1/users/{username}/avatar": login("/api/v1/users/alice/avatar", 404),

		// The real-time transports: the connect command carries the token
		// (TestConnectTokens, TestAnonymous); a session id is a 128-bit
		// capability.
		"GET /ws":              public("/ws", 400, "a plain GET is no WebSocket handshake; connect is checked below"),
		"POST /http/open":      public("/http/open", 200, "opens a session whose commands wait for connect (checked below)"),
		"POST /http/send":      public("/http/send?session=guess", 404, "an unknown session id"),
		"POST /http/close":     public("/http/close?session=guess", 404, "an unknown session id"),
		"GET /sse":             public("/sse?session=guess", 404, "an unknown session id"),
		"GET /poll":            public("/poll?session=guess", 404, "an unknown session id"),
		"GET /rtc/ice-servers": {path: "/rtc/ice-servers", anon: 401, why: "TURN credentials for a signed-in user"},

		// Server API: the API key.
		"POST /api/publish":     {path: "/api/publish", anon: 401, eve: 401, why: "API key only"},
		"POST /api/broadcast":   {path: "/api/broadcast", anon: 401, eve: 401, why: "API key only"},
		"POST /api/history":     {path: "/api/history", anon: 401, eve: 401, why: "API key only"},
		"POST /api/presence":    {path: "/api/presence", anon: 401, eve: 401, why: "API key only"},
		"POST /api/disconnect":  {path: "/api/disconnect", anon: 401, eve: 401, why: "API key only"},
		"POST /api/unsubscribe": {path: "/api/unsubscribe", anon: 401, eve: 401, why: "API key only"},
		"POST /api/token":       {path: "/api/token", anon: 401, eve: 401, why: "API key only"},

		// The caller's own account: eve acts on hers, or names alice's
		// token and gets 404.
		"GET /api/v1/me":                  login("/api/v1/me", 200),
		"PATCH /api/v1/me":                login("/api/v1/me", 0),
		"PUT /api/v1/me/avatar":           login("/api/v1/me/avatar", 0),
		"DELETE /api/v1/me/avatar":        login("/api/v1/me/avatar", 0),
		"PUT /api/v1/me/password":         login("/api/v1/me/password", 0),
		"GET /api/v1/auth/tokens":         login("/api/v1/auth/tokens", 200),
		"POST /api/v1/auth/tokens":        login("/api/v1/auth/tokens", 0),
		"DELETE /api/v1/auth/tokens/{id}": login("/api/v1/auth/tokens/"+tokID, 404),
		"POST /api/v1/auth/connect-token": login("/api/v1/auth/connect-token", 0),
		"POST /api/v1/auth/logout":        login("/api/v1/auth/logout", 0),
		"POST /api/v1/auth/logout-all":    login("/api/v1/auth/logout-all", 0),
		"GET /api/v1/push/key":            login("/api/v1/push/key", 0),
		"POST /api/v1/push/subscriptions": login("/api/v1/push/subscriptions", 0),
		"DELETE /api/v1/push/subscriptions/{id}": {path: "/api/v1/push/subscriptions/x", anon: 401, eve: 404,
			why: "another user's subscription is 404 (TestWebPush)"},
		"GET /api/v1/users/{username}":   login("/api/v1/users/alice", 200),
		"GET /api/v1/rooms":              login("/api/v1/rooms", 200),
		"POST /api/v1/rooms":             login("/api/v1/rooms", 0),
		"GET /api/v1/rooms/public":       login("/api/v1/rooms/public", 200),
		"POST /api/v1/direct/{username}": login("/api/v1/direct/alice", 0),
		"GET /api/v1/search":             login("/api/v1/search?q=secret&room="+fmt.Sprint(id), 403),
		"GET /api/v1/files/{file}":       login("/api/v1/files/"+file, 404),

		// alice's private room: eve is no member.
		"GET /api/v1/rooms/{room}":                                     login(r, 403),
		"PATCH /api/v1/rooms/{room}":                                   {path: r, body: `{"topic":"mine"}`, anon: 401, eve: 403},
		"POST /api/v1/rooms/{room}/join":                               login(r+"/join", 404),
		"POST /api/v1/rooms/{room}/leave":                              login(r+"/leave", 403),
		"GET /api/v1/rooms/{room}/members":                             login(r+"/members", 403),
		"POST /api/v1/rooms/{room}/members":                            login(r+"/members", 403),
		"DELETE /api/v1/rooms/{room}/members/{username}":               login(r+"/members/alice", 403),
		"PUT /api/v1/rooms/{room}/members/{username}/role":             {path: r + "/members/alice/role", body: `{"role":"member"}`, anon: 401, eve: 403},
		"GET /api/v1/rooms/{room}/messages":                            login(r+"/messages", 403),
		"POST /api/v1/rooms/{room}/messages":                           {path: r + "/messages", body: `{"text":"hi"}`, anon: 401, eve: 403},
		"PATCH /api/v1/rooms/{room}/messages/{seq}":                    {path: r + "/messages/1", body: `{"text":"mine now"}`, anon: 401, eve: 403},
		"DELETE /api/v1/rooms/{room}/messages/{seq}":                   login(r+"/messages/1", 403),
		"PUT /api/v1/rooms/{room}/messages/{seq}/reactions/{emoji}":    login(r+"/messages/1/reactions/x", 403),
		"DELETE /api/v1/rooms/{room}/messages/{seq}/reactions/{emoji}": login(r+"/messages/1/reactions/x", 403),
		"GET /api/v1/rooms/{room}/events":                              login(r+"/events", 403),
		"GET /api/v1/rooms/{room}/files":                               login(r+"/files", 403),
		"POST /api/v1/rooms/{room}/files":                              login(r+"/files?name=x", 403),
		"GET /api/v1/rooms/{room}/pins":                                login(r+"/pins", 403),
		"PUT /api/v1/rooms/{room}/pins/{seq}":                          login(r+"/pins/1", 403),
		"DELETE /api/v1/rooms/{room}/pins/{seq}":                       login(r+"/pins/1", 403),
		"GET /api/v1/rooms/{room}/presence":                            login(r+"/presence", 403),
		"GET /api/v1/rooms/{room}/threads/{seq}":                       login(r+"/threads/1", 403),
		"POST /api/v1/rooms/{room}/read":                               login(r+"/read", 403),
		"POST /api/v1/rooms/{room}/typing":                             login(r+"/typing", 403),
		"PUT /api/v1/rooms/{room}/notify":                              {path: r + "/notify", body: `{"level":"all"}`, anon: 401, eve: 403},
		"POST /api/v1/rooms/{id}/stream-keys":                          login(r+"/stream-keys", 403),
		"GET /api/v1/rooms/{id}/stream-keys":                           login(r+"/stream-keys", 403),
		"DELETE /api/v1/rooms/{id}/stream-keys/{key}":                  login(r+"/stream-keys/"+keyID, 403),

		// WHIP/WHEP: a stream key or a member's bearer token; a
		// resource id is a capability of its creator.
		"POST /rtc/whip/{room}":        login("/rtc/whip/"+sfuRoom, 401),
		"POST /rtc/whep/{room}":        login("/rtc/whep/"+sfuRoom, 401),
		"PATCH /rtc/whip/{room}/{id}":  login("/rtc/whip/"+sfuRoom+"/x", 401),
		"PATCH /rtc/whep/{room}/{id}":  login("/rtc/whep/"+sfuRoom+"/x", 401),
		"DELETE /rtc/whip/{room}/{id}": login("/rtc/whip/"+sfuRoom+"/x", 401),
		"DELETE /rtc/whep/{room}/{id}": login("/rtc/whep/"+sfuRoom+"/x", 401),

		// Server admins only.
		"GET /api/v1/admin/users":                         login("/api/v1/admin/users", 403),
		"POST /api/v1/admin/users/{name}/disable":         login("/api/v1/admin/users/alice/disable", 403),
		"POST /api/v1/admin/users/{name}/enable":          login("/api/v1/admin/users/alice/enable", 403),
		"POST /api/v1/admin/users/{name}/reset-password":  login("/api/v1/admin/users/alice/reset-password", 403),
		"GET /api/v1/admin/users/{name}/sessions":         login("/api/v1/admin/users/alice/sessions", 403),
		"DELETE /api/v1/admin/users/{name}/sessions":      login("/api/v1/admin/users/alice/sessions", 403),
		"DELETE /api/v1/admin/users/{name}/sessions/{id}": login("/api/v1/admin/users/alice/sessions/x", 403),
		"GET /api/v1/admin/rooms":                         login("/api/v1/admin/rooms", 403),
		"GET /api/v1/admin/registration":                  login("/api/v1/admin/registration", 403),
		"PUT /api/v1/admin/registration":                  login("/api/v1/admin/registration", 403),
		"POST /api/v1/admin/invites":                      login("/api/v1/admin/invites", 403),
		"GET /api/v1/admin/invites":                       login("/api/v1/admin/invites", 403),
		"DELETE /api/v1/admin/invites/{id}":               login("/api/v1/admin/invites/x", 403),
		"GET /api/v1/admin/stats":                         login("/api/v1/admin/stats", 403),
	}

	routes := server.Routes(ts.Server)
	for _, pattern := range routes {
		if _, ok := rows[pattern]; !ok {
			t.Errorf("route %q has no authorization row: add one (who may call it, and a request that shows it)", pattern)
		}
	}
	for pattern, row := range rows {
		if !slices.Contains(routes, pattern) {
			t.Errorf("row %q names no registered route", pattern)
			continue
		}
		method, _, _ := strings.Cut(pattern, " ")
		if got := authzStatus(t, ts, method, row.path, row.body, ""); got != row.anon {
			t.Errorf("%s %s without credentials: %d, want %d (%s)", method, row.path, got, row.anon, row.why)
		}
		if row.eve != 0 {
			if got := authzStatus(t, ts, method, row.path, row.body, eve.token); got != row.eve {
				t.Errorf("%s %s as eve: %d, want %d (%s)", method, row.path, got, row.eve, row.why)
			}
		}
	}

	// The transports' connect command without a token is refused (113,
	// then close 4501), so an opened session or socket gets nothing.
	cl := dial(t, ts, nil)
	cl.callErr(map[string]any{"op": "connect"}, 113)
	// alice's things are still there: eve's requests changed nothing.
	if msgs := alice.call(t, ts, "GET", r+"/messages", nil, http.StatusOK)["messages"].([]any); len(msgs) != 1 {
		t.Fatalf("alice's room holds %d messages after eve's requests, want 1", len(msgs))
	}
	alice.call(t, ts, "GET", "/api/v1/files/"+file, nil, http.StatusOK)
}

// authzStatus makes a request with json (an empty object when "") as the
// body of a POST, PUT or PATCH, and returns its status.
func authzStatus(t *testing.T, ts *testServer, method, path, json, token string) int {
	t.Helper()
	var body io.Reader
	if method == "POST" || method == "PUT" || method == "PATCH" {
		body = strings.NewReader(cmp.Or(json, "{}"))
	}
	req, _ := http.NewRequest(method, ts.URL+path, body)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if method == "OPTIONS" {
		req.Header.Set("Origin", "https://example.com")
		req.Header.Set("Access-Control-Request-Method", "POST")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
