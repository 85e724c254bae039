package server_test

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/config"
	"github.com/sori-dev/sori/internal/push"
	"github.com/sori-dev/sori/internal/server"
)

// pushEndpoint is a local push service with one browser behind each path:
// it checks each request's VAPID signature against the server's public key
// and decrypts the payload with that browser's private key.
type pushEndpoint struct {
	srv      *httptest.Server
	browsers map[string]*ecdh.PrivateKey
	auth     []byte
	got      chan pushed
}

type pushed struct {
	path    string
	payload push.Payload
	err     error
}

func newPushEndpoint(t *testing.T, paths ...string) *pushEndpoint {
	p := &pushEndpoint{browsers: map[string]*ecdh.PrivateKey{}, got: make(chan pushed, 20), auth: make([]byte, 16)}
	rand.Read(p.auth)
	for _, path := range paths {
		k, err := ecdh.P256().GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		p.browsers[path] = k
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		res := pushed{path: r.URL.Path}
		defer func() { p.got <- res }()
		if _, res.err = push.VerifyAuthorization(r.Header.Get("Authorization"), p.srv.URL, time.Now()); res.err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		plain, err := push.Decrypt(body, p.browsers[r.URL.Path], p.auth)
		if res.err = err; err == nil {
			res.err = json.Unmarshal(plain, &res.payload)
		}
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *pushEndpoint) subscription(path string) map[string]any {
	return map[string]any{"endpoint": p.srv.URL + path, "expirationTime": nil, "keys": map[string]any{
		"p256dh": base64.RawURLEncoding.EncodeToString(p.browsers[path].PublicKey().Bytes()),
		"auth":   base64.RawURLEncoding.EncodeToString(p.auth)}}
}

func (p *pushEndpoint) next(t *testing.T) pushed {
	t.Helper()
	select {
	case got := <-p.got:
		if got.err != nil {
			t.Fatalf("push to %s: %v", got.path, got.err)
		}
		return got
	case <-time.After(30 * time.Second):
		t.Fatal("no push within 30 s")
	}
	return pushed{}
}

// TestWebPushEndToEnd: a user with no open connection gets invitations,
// mentions and direct messages as Web Push, encrypted to their browser and
// signed with the server's VAPID key; a connected user gets none; the
// endpoints need a login and touch only one's own subscriptions.
func TestWebPushEndToEnd(t *testing.T) {
	ep := newPushEndpoint(t, "/bob", "/carol")
	ts := startServer(t, func(c *config.Config) {
		c.PushGrace = config.Duration(50 * time.Millisecond)
		c.PushHosts = []string{"127.0.0.1"}
	},
		server.WithPushClient(ep.srv.Client()))
	alice, bob, carol := signup(t, ts.URL, "alice"), signup(t, ts.URL, "bob"), signup(t, ts.URL, "carol")

	key := bob.call(t, ts, "GET", "/api/v1/push/key", nil, http.StatusOK)["public_key"].(string)
	if k, err := base64.RawURLEncoding.DecodeString(key); err != nil || len(k) != 65 || k[0] != 4 {
		t.Fatalf("public key %q", key)
	}
	bobSub := bob.call(t, ts, "POST", "/api/v1/push/subscriptions", ep.subscription("/bob"), http.StatusCreated)["id"].(string)
	carol.call(t, ts, "POST", "/api/v1/push/subscriptions", ep.subscription("/carol"), http.StatusCreated)
	bad := ep.subscription("/bob")
	bad["keys"].(map[string]any)["p256dh"] = "AAAA"
	bob.call(t, ts, "POST", "/api/v1/push/subscriptions", bad, http.StatusBadRequest)

	// Carol is connected (the web app subscribes to her personal channel):
	// nothing is pushed to her.
	cc := connectChat(t, ts, carol)
	cc.call(map[string]any{"op": "subscribe", "channel": "user:carol"})

	room := alice.call(t, ts, "POST", "/api/v1/rooms", map[string]any{"name": "team", "kind": "private"}, http.StatusCreated)
	id := int64(num(room["id"]))
	base := fmt.Sprintf("/api/v1/rooms/%d", id)
	alice.call(t, ts, "POST", base+"/members", map[string]any{"username": "carol"}, http.StatusCreated)
	alice.call(t, ts, "POST", base+"/members", map[string]any{"username": "bob"}, http.StatusCreated)
	got := ep.next(t)
	if got.path != "/bob" || got.payload.Type != "invited" || got.payload.Room != id || got.payload.By != "alice" {
		t.Fatalf("first push: %+v, want bob's invitation (carol is connected)", got)
	}
	m := alice.call(t, ts, "POST", base+"/messages", map[string]any{"text": "@bob @carol standup in 5"}, http.StatusCreated)
	got = ep.next(t)
	if got.path != "/bob" || got.payload.Type != "mention" || got.payload.Seq != num(m["seq"]) || !strings.Contains(got.payload.Body, "standup") {
		t.Fatalf("mention push: %+v", got)
	}
	// Muted: nothing. The direct message after it is the next push.
	bob.call(t, ts, "PUT", base+"/notify", map[string]any{"level": "none"}, http.StatusOK)
	alice.call(t, ts, "POST", base+"/messages", map[string]any{"text": "@bob still there?"}, http.StatusCreated)
	dm := alice.call(t, ts, "POST", "/api/v1/direct/bob", nil, http.StatusCreated)
	d := alice.call(t, ts, "POST", fmt.Sprintf("/api/v1/rooms/%d/messages", int64(num(dm["id"]))), map[string]any{"text": "psst"}, http.StatusCreated)
	got = ep.next(t)
	if got.path != "/bob" || got.payload.Type != "dm" || got.payload.Seq != num(d["seq"]) || got.payload.Body != "psst" {
		t.Fatalf("push after muting: %+v, want the direct message", got)
	}
	select {
	case extra := <-ep.got:
		t.Fatalf("unexpected push %+v", extra)
	default:
	}

	// Authorization: login required; one's own subscriptions only.
	restCall(t, ts.URL, "", "GET", "/api/v1/push/key", nil, http.StatusUnauthorized)
	restCall(t, ts.URL, "", "POST", "/api/v1/push/subscriptions", ep.subscription("/bob"), http.StatusUnauthorized)
	restCall(t, ts.URL, "", "DELETE", "/api/v1/push/subscriptions/"+bobSub, nil, http.StatusUnauthorized)
	alice.call(t, ts, "DELETE", "/api/v1/push/subscriptions/"+bobSub, nil, http.StatusNotFound)
	bob.call(t, ts, "DELETE", "/api/v1/push/subscriptions/"+bobSub, nil, http.StatusOK)
	bob.call(t, ts, "DELETE", "/api/v1/push/subscriptions/"+bobSub, nil, http.StatusNotFound)
}

// TestWebPushSubscriptionSSRF: a real server with the default push hosts
// keeps a subscription to a browser push service and refuses one to any
// other host or an internal address (400, error 101), so a user cannot make
// the server POST where they like; --push-hosts replaces the list.
func TestWebPushSubscriptionSSRF(t *testing.T) {
	ep := newPushEndpoint(t, "/bob")
	sub := func(endpoint string) map[string]any {
		s := ep.subscription("/bob")
		s["endpoint"] = endpoint
		return s
	}
	ts := startServer(t, nil)
	bob := signup(t, ts.URL, "bob")
	bob.call(t, ts, "POST", "/api/v1/push/subscriptions", sub("https://fcm.googleapis.com/fcm/send/abc"), http.StatusCreated)
	for _, bad := range []string{ep.srv.URL + "/bob", "https://169.254.169.254/latest/meta-data", "https://localhost/x",
		"https://intranet.example/admin", "https://[fd00::1]/x"} {
		out := bob.call(t, ts, "POST", "/api/v1/push/subscriptions", sub(bad), http.StatusBadRequest)
		if out["error"].(map[string]any)["code"] != 101.0 {
			t.Fatalf("%s: %v", bad, out)
		}
	}
	ts2 := startServer(t, func(c *config.Config) { c.PushHosts = []string{"*.push.example"} })
	carol := signup(t, ts2.URL, "carol")
	carol.call(t, ts2, "POST", "/api/v1/push/subscriptions", sub("https://eu.push.example/x"), http.StatusCreated)
	carol.call(t, ts2, "POST", "/api/v1/push/subscriptions", sub("https://fcm.googleapis.com/fcm/send/abc"), http.StatusBadRequest)
}
