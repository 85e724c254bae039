package push

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/chat"
	"github.com/sori-dev/sori/internal/clock"
	"github.com/sori-dev/sori/internal/store"
	"github.com/sori-dev/sori/internal/store/sqlite"
)

func b64(s string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// TestDecryptRFC8291Vector opens the example message of RFC 8291
// appendix A with its receiver keys: the key derivation matches the RFC.
func TestDecryptRFC8291Vector(t *testing.T) {
	priv, err := ecdh.P256().NewPrivateKey(b64("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"))
	if err != nil {
		t.Fatal(err)
	}
	body := b64("DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN")
	got, err := Decrypt(body, priv, b64("BTBZMqHH6r4Tts7J_aSIgg"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "When I grow up, I want to be a watermelon" {
		t.Fatalf("plaintext %q", got)
	}
}

// browser is a subscription's private side.
type browser struct {
	priv *ecdh.PrivateKey
	auth []byte
}

func newBrowser(t *testing.T) browser {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 16)
	rand.Read(auth)
	return browser{priv, auth}
}

func (b browser) subscription(endpoint string) Subscription {
	var s Subscription
	s.Endpoint = endpoint
	s.Keys.P256DH = base64.RawURLEncoding.EncodeToString(b.priv.PublicKey().Bytes())
	s.Keys.Auth = base64.RawURLEncoding.EncodeToString(b.auth)
	return s
}

func TestEncryptRoundTripAndBounds(t *testing.T) {
	b := newBrowser(t)
	msg := []byte(`{"type":"mention"}`)
	body, err := Encrypt(msg, b.priv.PublicKey().Bytes(), b.auth)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decrypt(body, b.priv, b.auth)
	if err != nil || string(got) != string(msg) {
		t.Fatalf("round trip: %q %v", got, err)
	}
	other := newBrowser(t)
	if _, err := Decrypt(body, other.priv, other.auth); err == nil {
		t.Fatal("another browser's keys opened the message")
	}
	if _, err := Encrypt(make([]byte, maxPayload+1), b.priv.PublicKey().Bytes(), b.auth); err == nil {
		t.Fatal("an over-long payload was encrypted")
	}
}

func TestVAPIDKeyAndToken(t *testing.T) {
	dir := t.TempDir()
	k, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreateKey(dir)
	if err != nil || k2.String() != k.String() {
		t.Fatalf("the key changed on reload: %v", err)
	}
	if len(k.PublicKey()) != 65 || k.PublicKey()[0] != 4 {
		t.Fatalf("public key %x", k.PublicKey())
	}
	now := time.Now()
	h, err := k.authorization("https://push.example.net/send/abc?x=1", "mailto:ops@example.net", now)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := VerifyAuthorization(h, "https://push.example.net", now)
	if err != nil || string(pub) != string(k.PublicKey()) {
		t.Fatalf("verify: %v", err)
	}
	if _, err := VerifyAuthorization(h, "https://other.example", now); err == nil {
		t.Fatal("a token for another audience passed")
	}
	if _, err := VerifyAuthorization(h, "https://push.example.net", now.Add(13*time.Hour)); err == nil {
		t.Fatal("an expired token passed")
	}
	other, _ := GenerateKey()
	forged := h[:len("vapid t=")] + h[len("vapid t="):len(h)-87] + ", k=" + base64.RawURLEncoding.EncodeToString(other.PublicKey())
	if _, err := VerifyAuthorization(forged, "https://push.example.net", now); err == nil {
		t.Fatal("a token passed with another key")
	}
}

// pushService is a local push service: it checks the VAPID header and
// decrypts each message with the browser's private key.
type pushService struct {
	t       *testing.T
	srv     *httptest.Server
	b       browser
	key     []byte
	status  atomic.Int32
	mu      sync.Mutex
	got     []Payload
	arrived chan struct{}
}

func newPushService(t *testing.T, key *Key) *pushService {
	p := &pushService{t: t, b: newBrowser(t), key: key.PublicKey(), arrived: make(chan struct{}, 100)}
	p.status.Store(http.StatusCreated)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		pub, err := VerifyAuthorization(r.Header.Get("Authorization"), p.srv.URL, time.Now())
		if err != nil || string(pub) != string(p.key) || r.Header.Get("Content-Encoding") != "aes128gcm" || r.Header.Get("TTL") == "" {
			t.Errorf("push request refused: %v, headers %v", err, r.Header)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		plain, err := Decrypt(body, p.b.priv, p.b.auth)
		if err != nil {
			t.Errorf("decrypt: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var pl Payload
		if err := json.Unmarshal(plain, &pl); err != nil {
			t.Errorf("payload %q: %v", plain, err)
		}
		p.mu.Lock()
		p.got = append(p.got, pl)
		p.mu.Unlock()
		w.WriteHeader(int(p.status.Load()))
		p.arrived <- struct{}{}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *pushService) received() []Payload {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Payload(nil), p.got...)
}

// TestPushDecision: a notice is pushed only when the user has no
// connection when it comes and still none after the grace period; a dead
// endpoint (410) removes the subscription.
func TestPushDecision(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "sori.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	bob, err := st.CreateUser(ctx, store.User{Username: "bob", PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := GenerateKey()
	ps := newPushService(t, key)
	var online atomic.Bool
	clk := clock.NewFake(time.Now())
	svc, err := New(Config{Store: st, Key: key, Online: func(user string) bool { return online.Load() }, Grace: 5 * time.Second,
		Clock: clk, AllowHTTP: true, AllowPrivate: true, Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Subscribe(ctx, bob, ps.b.subscription("ftp://x/y")); err == nil {
		t.Fatal("a non-http endpoint was accepted")
	}
	bad := ps.b.subscription(ps.srv.URL + "/sub/bob")
	bad.Keys.Auth = "short"
	if _, err := svc.Subscribe(ctx, bob, bad); err == nil {
		t.Fatal("a bad auth secret was accepted")
	}
	if _, err := svc.Subscribe(ctx, bob, ps.b.subscription(ps.srv.URL+"/sub/bob")); err != nil {
		t.Fatal(err)
	}
	notice := func(seq uint64) chat.Notice {
		return chat.Notice{UserID: bob.ID, User: "bob", Type: "mention", RoomID: 7, Seq: seq, By: "alice", Text: "hi @bob"}
	}

	// Connected when it comes: nothing is even scheduled.
	online.Store(true)
	svc.Notify(ctx, notice(1))
	if clk.Pending() != 0 {
		t.Fatal("a notice was scheduled for a connected user")
	}
	// Offline when it comes, back within the grace period: not sent.
	online.Store(false)
	svc.Notify(ctx, notice(2))
	if clk.Pending() != 1 {
		t.Fatal("no notice scheduled for a user with no connection")
	}
	online.Store(true)
	clk.Advance(5 * time.Second)
	svc.Wait()
	// Offline throughout: sent once the grace period ends, not before.
	online.Store(false)
	svc.Notify(ctx, notice(3))
	if clk.Pending() != 1 {
		t.Fatal("no notice scheduled for a user with no connection")
	}
	clk.Advance(4 * time.Second)
	if n := len(ps.received()); n != 0 {
		t.Fatalf("%d pushes before the grace period ended", n)
	}
	clk.Advance(time.Second)
	svc.Wait()
	got := ps.received()
	if len(got) != 1 || got[0].Seq != 3 || got[0].Type != "mention" || got[0].By != "alice" || got[0].Room != 7 || got[0].Body != "hi @bob" || got[0].Title == "" {
		t.Fatalf("pushed %+v, want only seq 3", got)
	}
	// The push service says the subscription is gone: it is deleted.
	ps.status.Store(http.StatusGone)
	svc.Notify(ctx, notice(4))
	if clk.Pending() != 1 {
		t.Fatal("no notice scheduled for a user with no connection")
	}
	clk.Advance(5 * time.Second)
	svc.Wait()
	if subs, _ := st.ListPushSubscriptions(ctx, bob.ID); len(subs) != 0 {
		t.Fatalf("subscriptions after 410: %+v", subs)
	}
	if sent, _ := svc.Stats(); sent != 1 {
		t.Fatalf("sent = %d, want 1", sent)
	}
}
