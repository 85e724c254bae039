package server_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sori-dev/sori/internal/auth"
	"github.com/sori-dev/sori/internal/clock"
	"github.com/sori-dev/sori/internal/config"
	"github.com/sori-dev/sori/internal/server"
)

// writePublicKey writes pub as a PEM file and returns its path.
func writePublicKey(t *testing.T, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func sign(t *testing.T, m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConnectTokens(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherEC, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	secret := []byte(strings.Repeat("s", 32))
	ts := startServer(t, func(c *config.Config) {
		c.TokenPublicKeys = []string{writePublicKey(t, &rsaKey.PublicKey), writePublicKey(t, &ecKey.PublicKey)}
	})
	future := time.Now().Add(time.Hour).Unix()
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"mallory","exp":`+jsonInt(future)+`}`)) + "."
	good := sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "alice", "exp": future})
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","exp":`+jsonInt(future)+`}`)) + "." + parts[2]

	tests := []struct {
		name      string
		token     string
		wantUser  string // "" = refused
		wantError float64
		wantClose int
	}{
		{"HMAC", good, "alice", 0, 0},
		{"HS512", sign(t, jwt.SigningMethodHS512, secret, jwt.MapClaims{"sub": "alice"}), "alice", 0, 0},
		{"RSA", sign(t, jwt.SigningMethodRS256, rsaKey, jwt.MapClaims{"sub": "rita", "exp": future}), "rita", 0, 0},
		{"RSA-PSS", sign(t, jwt.SigningMethodPS256, rsaKey, jwt.MapClaims{"sub": "rita"}), "rita", 0, 0},
		{"ECDSA", sign(t, jwt.SigningMethodES256, ecKey, jwt.MapClaims{"sub": "eve", "exp": future}), "eve", 0, 0},
		{"forged signature", sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32)), jwt.MapClaims{"sub": "alice"}), "", 113, 4501},
		{"tampered claims", tampered, "", 113, 4501},
		{"alg none", none, "", 113, 4501},
		{"unknown ECDSA key", sign(t, jwt.SigningMethodES256, otherEC, jwt.MapClaims{"sub": "eve"}), "", 113, 4501},
		{"expired", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(-time.Hour).Unix()}), "", 112, 4003},
		{"not yet valid", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "alice", "nbf": future}), "", 113, 4501},
		{"missing sub", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"exp": future}), "", 113, 4501},
		{"garbage", "not.a.token", "", 113, 4501},
		{"no token, anonymous not allowed", "", "", 113, 4501},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := dial(t, ts, nil)
			cmd := map[string]any{"op": "connect"}
			if tt.token != "" {
				cmd["token"] = tt.token
			}
			res, perr, _ := cl.reply(cl.send(cmd))
			if tt.wantUser != "" {
				if perr != nil || res["user"] != tt.wantUser {
					t.Fatalf("connect: %v %v, want user %s", res, perr, tt.wantUser)
				}
				cl.call(map[string]any{"op": "ping"})
				return
			}
			if perr == nil || perr["code"] != tt.wantError {
				t.Fatalf("connect: %v %v, want error %v", res, perr, tt.wantError)
			}
			if ce := cl.waitClose(); int(ce.Code) != tt.wantClose {
				t.Fatalf("close %v, want %d", ce, tt.wantClose)
			}
		})
	}
}

func jsonInt(v int64) string { return mustJSON(v) }

func TestIssuerAndAudience(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.TokenIssuer = "https://id.example"; c.TokenAudience = "sori" })
	secret := []byte(strings.Repeat("s", 32))
	for _, tt := range []struct {
		claims jwt.MapClaims
		ok     bool
	}{
		{jwt.MapClaims{"sub": "a", "iss": "https://id.example", "aud": "sori"}, true},
		{jwt.MapClaims{"sub": "a", "iss": "https://id.example", "aud": []string{"x", "sori"}}, true},
		{jwt.MapClaims{"sub": "a", "iss": "https://evil.example", "aud": "sori"}, false},
		{jwt.MapClaims{"sub": "a", "iss": "https://id.example", "aud": "other"}, false},
		{jwt.MapClaims{"sub": "a"}, false},
	} {
		cl := dial(t, ts, nil)
		_, perr, _ := cl.reply(cl.send(map[string]any{"op": "connect", "token": sign(t, jwt.SigningMethodHS256, secret, tt.claims)}))
		if (perr == nil) != tt.ok {
			t.Errorf("claims %v: error %v, want ok=%v", tt.claims, perr, tt.ok)
		}
	}
}

// mint signs claims with the test server's secret.
func (ts *testServer) mint(t *testing.T, user string, ttl time.Duration, channels ...string) string {
	t.Helper()
	tok, err := ts.Verifier().Mint(auth.NewClaims(user, ttl, time.Now(), channels...))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// mintOn mints a token that expires ttl after the fake clock's now (the
// verifier checks signatures and expiry on the real clock, the session times
// the expiry on the fake one; a token valid on the fake is valid on both).
func mintOn(t *testing.T, ts *testServer, clk *clock.Fake, user string, ttl time.Duration) string {
	t.Helper()
	tok, err := ts.Verifier().Mint(auth.NewClaims(user, ttl+time.Until(clk.Now()), time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTokenRefresh(t *testing.T) {
	// Token expiry is a timer of the session layer, which runs on a fake
	// clock here: the test fires it by moving the clock, not by waiting.
	// The heartbeat runs on that clock too, and moving it by an hour would
	// fire it ~1,440 times at once: ~144 pings land on the client before the
	// close frame, and under load the client is still answering them when
	// the server's real-time close deadline (ws CloseTimeout + 1 s) closes
	// the socket, so a pong meets a reset instead of the client reading
	// 4003. Heartbeats are not under test here: their interval is longer
	// than any jump of the clock.
	fake := func(t *testing.T) (*testServer, *clock.Fake) {
		clk := clock.NewFake(time.Now())
		noPings := func(c *config.Config) { c.PingInterval = config.Duration(24 * time.Hour) }
		return startServer(t, noPings, server.WithClock(clk)), clk
	}
	ts := startServer(t, nil)

	t.Run("expiry without refresh closes 4003", func(t *testing.T) {
		ts, clk := fake(t)
		cl := dial(t, ts, nil)
		// The expiry timer is armed before the connect reply is sent.
		cl.call(map[string]any{"op": "connect", "token": mintOn(t, ts, clk, "alice", time.Hour)})
		clk.Advance(time.Hour + time.Minute)
		if ce := cl.waitClose(); ce.Code != 4003 {
			t.Fatalf("close %v, want 4003", ce)
		}
	})

	t.Run("refresh keeps the connection past the old expiry", func(t *testing.T) {
		ts, clk := fake(t)
		cl := dial(t, ts, nil)
		res := cl.call(map[string]any{"op": "connect", "token": mintOn(t, ts, clk, "alice", time.Hour)})
		if n := num(res["expires_in"]); n < 3500 || n > 3601 {
			t.Fatalf("expires_in %v, want about 3600", res["expires_in"])
		}
		ref := cl.call(map[string]any{"op": "refresh", "token": mintOn(t, ts, clk, "alice", 3*time.Hour)})
		if n := num(ref["expires_in"]); n < 3*3600-100 {
			t.Fatalf("refresh expires_in %v", ref["expires_in"])
		}
		clk.Advance(2 * time.Hour) // past the first token's expiry
		cl.call(map[string]any{"op": "ping"})
	})

	t.Run("refresh with a bad token keeps the old one", func(t *testing.T) {
		cl := connectAs(t, ts, "alice")
		cl.callErr(map[string]any{"op": "refresh", "token": "bad"}, 113)
		cl.callErr(map[string]any{"op": "refresh", "token": sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("s", 32)),
			jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(-time.Hour).Unix()})}, 112)
		cl.call(map[string]any{"op": "ping"})
	})

	t.Run("refresh with another user's token closes 4501", func(t *testing.T) {
		cl := connectAs(t, ts, "alice")
		cl.callErr(map[string]any{"op": "refresh", "token": ts.mint(t, "mallory", time.Hour)}, 113)
		if ce := cl.waitClose(); ce.Code != 4501 {
			t.Fatalf("close %v, want 4501", ce)
		}
	})
}

func TestAnonymous(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.AllowAnonymous = true })
	cl := dial(t, ts, nil)
	res := cl.call(map[string]any{"op": "connect"})
	if res["user"] != "" {
		t.Fatalf("anonymous user %v", res["user"])
	}
	cl.call(map[string]any{"op": "subscribe", "channel": "feed:btc"}) // feed allows anonymous readers
	cl.callErr(map[string]any{"op": "subscribe", "channel": "room:x"}, 104)
	cl.callErr(map[string]any{"op": "subscribe", "channel": "plain"}, 104)
	cl.callErr(map[string]any{"op": "subscribe", "channel": "user:"}, 104)
	cl.callErr(map[string]any{"op": "publish", "channel": "feed:btc", "data": 1}, 104)
}

func TestChannelGrants(t *testing.T) {
	ts := startServer(t, nil)
	cl := connectAs(t, ts, "alice", "room:a", "room:team-*")
	cl.call(map[string]any{"op": "subscribe", "channel": "room:a"})
	cl.call(map[string]any{"op": "subscribe", "channel": "room:team-x"})
	cl.callErr(map[string]any{"op": "subscribe", "channel": "room:b"}, 104)
	cl.callErr(map[string]any{"op": "history", "channel": "room:b"}, 104)
	cl.callErr(map[string]any{"op": "presence", "channel": "room:b"}, 104)
	cl.call(map[string]any{"op": "subscribe", "channel": "user:alice"})
	cl.call(map[string]any{"op": "subscribe", "channel": "user:alice#alerts"})
	cl.callErr(map[string]any{"op": "subscribe", "channel": "user:alicex"}, 104)
	cl.callErr(map[string]any{"op": "subscribe", "channel": "user:bob"}, 104)
}
