package push

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/store"
	"github.com/sori-dev/sori/internal/store/sqlite"
)

func newTestService(t *testing.T, cfg Config) (*Service, store.User) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "sori.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	u, err := st.CreateUser(ctx, store.User{Username: "bob", PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := GenerateKey()
	cfg.Store, cfg.Key, cfg.Online = st, key, func(string) bool { return false }
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return svc, u
}

// TestEndpointAllowList: with the default allow-list, subscriptions to the
// browsers' push services are kept and every other endpoint (another
// host, a look-alike, an IP literal in any spelling, plain http, another
// port, credentials in the URL) is refused with 400/101 before anything
// is stored or sent.
func TestEndpointAllowList(t *testing.T) {
	svc, bob := newTestService(t, Config{})
	b := newBrowser(t)
	for _, ep := range []string{
		"https://fcm.googleapis.com/fcm/send/abc:def",
		"https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
		"https://wns2-by3p.notify.windows.com/w/?token=BQYAAA",
		"https://web.push.apple.com/QGuQ",
		"https://FCM.googleapis.com:443/fcm/send/x",
	} {
		if _, err := svc.Subscribe(context.Background(), bob, b.subscription(ep)); err != nil {
			t.Errorf("%s refused: %v", ep, err)
		}
	}
	for _, ep := range []string{
		"https://evil.example.com/wpush",
		"https://fcm.googleapis.com.evil.example/x",
		"https://evilfcm.googleapis.com/x",
		"https://push.services.mozilla.com/apex-not-a-subdomain",
		"https://127.0.0.1/x",
		"https://[::1]/x",
		"https://169.254.169.254/latest/meta-data",
		"https://2130706433/x",
		"https://[::ffff:10.0.0.1]/x",
		"http://fcm.googleapis.com/fcm/send/x",
		"https://fcm.googleapis.com:8443/fcm/send/x",
		"https://user:pw@fcm.googleapis.com/fcm/send/x",
		"ftp://fcm.googleapis.com/x",
		"fcm.googleapis.com/x",
	} {
		_, err := svc.Subscribe(context.Background(), bob, b.subscription(ep))
		if !errors.Is(err, protocol.ErrBadRequest) {
			t.Errorf("%s: %v, want error 101", ep, err)
		}
	}
	subs, _ := svc.cfg.Store.ListPushSubscriptions(context.Background(), bob.ID)
	if len(subs) != 5 {
		t.Fatalf("%d subscriptions stored, want the 5 allowed", len(subs))
	}

	// A configured list replaces the default; patterns are checked.
	own, bob2 := newTestService(t, Config{Hosts: []string{"push.example.net", "*.corp.example"}})
	if _, err := own.Subscribe(context.Background(), bob2, b.subscription("https://a.b.corp.example/x")); err != nil {
		t.Fatal(err)
	}
	if _, err := own.Subscribe(context.Background(), bob2, b.subscription("https://fcm.googleapis.com/x")); err == nil {
		t.Fatal("a default host passed a configured list without it")
	}
	for _, bad := range []string{"10.0.0.1", "*.", "ex ample.com", "a..b", "https://x.example"} {
		key, _ := GenerateKey()
		if _, err := New(Config{Store: own.cfg.Store, Key: key, Online: func(string) bool { return false }, Hosts: []string{bad}}); err == nil {
			t.Errorf("push host pattern %q accepted", bad)
		}
	}
}

func TestPublicAddr(t *testing.T) {
	for a, want := range map[string]bool{
		"142.250.185.74": true, "2a00:1450:4001:82b::200a": true,
		"127.0.0.1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false, "169.254.169.254": false,
		"100.64.0.1": false, "0.0.0.0": false, "255.255.255.255": false, "224.0.0.1": false, "198.18.0.1": false,
		"::1": false, "fe80::1": false, "fc00::1": false, "::ffff:127.0.0.1": false, "::ffff:8.8.8.8": true,
		"64:ff9b::a00:1": false, "2001:db8::1": false, "::": false,
	} {
		if got := publicAddr(netip.MustParseAddr(a)); got != want {
			t.Errorf("publicAddr(%s) = %t, want %t", a, got, want)
		}
	}
}

// TestGuardedClient: the default client dials no private address, even
// for a name that resolves to one ("localhost"), and follows no redirect
// with any client.
func TestGuardedClient(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	c := guardedClient(true)
	for _, u := range []string{srv.URL + "/x", strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/x"} {
		resp, err := c.Post(u, "application/octet-stream", strings.NewReader("x"))
		if err == nil {
			resp.Body.Close()
		}
		if !errors.Is(err, errPrivateAddress) {
			t.Fatalf("POST %s: %v, want the private-address refusal", u, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the guarded client reached the server %d times", n)
	}
	// A given client (tests) keeps no redirect-following either.
	svc, _ := newTestService(t, Config{HTTP: srv.Client(), AllowHTTP: true, AllowPrivate: true, Hosts: []string{"127.0.0.1"}})
	resp, err := svc.cfg.HTTP.Post(srv.URL+"/redirect", "application/octet-stream", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || hits.Load() != 1 {
		t.Fatalf("redirect: status %d after %d requests, want 307 after 1 (not followed)", resp.StatusCode, hits.Load())
	}
}

// TestStoredEndpointRecheckedAtSend: a subscription stored before the
// allow-list (or under a wider one) is not sent to.
func TestStoredEndpointRecheckedAtSend(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1); w.WriteHeader(201) }))
	defer srv.Close()
	svc, bob := newTestService(t, Config{HTTP: srv.Client(), AllowHTTP: true, AllowPrivate: true, Hosts: []string{"push.example"}})
	b := newBrowser(t)
	sub := b.subscription(srv.URL + "/old")
	stored, err := svc.cfg.Store.AddPushSubscription(context.Background(), store.PushSubscription{UserID: bob.ID, Endpoint: sub.Endpoint,
		P256DH: sub.Keys.P256DH, Auth: sub.Keys.Auth}, MaxSubscriptions)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.sendOne(context.Background(), stored, []byte(`{}`)); err == nil || hits.Load() != 0 {
		t.Fatalf("send to a no longer allowed endpoint: %v, %d requests", err, hits.Load())
	}
}
