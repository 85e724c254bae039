package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var secret = []byte(strings.Repeat("k", 32))

func TestNewVerifierConfig(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	_ = os.WriteFile(garbage, []byte("not a key"), 0o600)
	tests := []struct {
		name string
		cfg  VerifierConfig
		ok   bool
	}{
		{"hmac", VerifierConfig{HMACSecret: secret}, true},
		{"no key", VerifierConfig{}, false},
		{"short secret", VerifierConfig{HMACSecret: []byte("short")}, false},
		{"missing key file", VerifierConfig{PublicKeyFiles: []string{filepath.Join(dir, "nope.pem")}}, false},
		{"not a key", VerifierConfig{PublicKeyFiles: []string{garbage}}, false},
	}
	for _, tt := range tests {
		if _, err := NewVerifier(tt.cfg); (err == nil) != tt.ok {
			t.Errorf("%s: %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	ecFile := filepath.Join(t.TempDir(), "ec.pem")
	_ = os.WriteFile(ecFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600)
	v, err := NewVerifier(VerifierConfig{HMACSecret: secret, PublicKeys: []crypto.PublicKey{&rsaKey.PublicKey}, PublicKeyFiles: []string{ecFile},
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	exp := now.Add(time.Hour).Unix()
	tests := []struct {
		name    string
		token   string
		wantErr error
	}{
		{"HS256", sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "exp": exp}), nil},
		{"HS384 without exp", sign(jwt.SigningMethodHS384, secret, jwt.MapClaims{"sub": "a"}), nil},
		{"RS512", sign(jwt.SigningMethodRS512, rsaKey, jwt.MapClaims{"sub": "a"}), nil},
		{"ES384 from a key file", sign(jwt.SigningMethodES384, ecKey, jwt.MapClaims{"sub": "a"}), nil},
		{"within the leeway", sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "exp": now.Add(-2 * time.Second).Unix()}), nil},
		{"expired", sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "exp": now.Add(-time.Minute).Unix()}), ErrTokenExpired},
		{"wrong secret", sign(jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32)), jwt.MapClaims{"sub": "a"}), ErrTokenInvalid},
		{"no subject", sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"exp": exp}), ErrTokenInvalid},
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"sub": "a"}), ErrTokenInvalid},
		// The RSA public key used as an HMAC secret: the classic algorithm confusion.
		{"HS256 signed with the public key", sign(jwt.SigningMethodHS256, x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey), jwt.MapClaims{"sub": "a"}), ErrTokenInvalid},
		{"empty", "", ErrTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(tt.token)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Verify: %v, want %v", err, tt.wantErr)
			}
			if err == nil && c.User() != "a" {
				t.Fatalf("user %q", c.User())
			}
		})
	}
}

func TestMintAndGrants(t *testing.T) {
	now := time.Now()
	v, _ := NewVerifier(VerifierConfig{HMACSecret: secret})
	c := NewClaims("alice", time.Hour, now, "room:a", "team:*")
	c.Publish = []string{"feed:alice*"}
	tok, err := v.Mint(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if got.User() != "alice" || got.ExpiresAt().Unix() != now.Add(time.Hour).Unix() {
		t.Fatalf("claims %+v", got)
	}
	for ch, want := range map[string]bool{"room:a": true, "room:ab": false, "team:": true, "team:x:y": true, "teams:x": false} {
		if got.CanSubscribe(ch) != want {
			t.Errorf("CanSubscribe(%q) = %v", ch, !want)
		}
	}
	if !got.CanPublish("feed:alice-1") || got.CanPublish("feed:bob") || got.CanPublish("room:a") {
		t.Error("publish grants wrong")
	}
	if forever := NewClaims("x", 0, now); !forever.ExpiresAt().IsZero() {
		t.Error("ttl 0 must mean no expiry")
	}
	pubOnly, _ := NewVerifier(VerifierConfig{PublicKeys: []crypto.PublicKey{&ecdsa.PublicKey{}}})
	if _, err := pubOnly.Mint(c); err == nil {
		t.Error("minting without an HMAC secret succeeded")
	}
}

func TestAPIKeys(t *testing.T) {
	k := NewAPIKeys("one", "", "two")
	for key, want := range map[string]bool{"one": true, "two": true, "": false, "on": false, "one ": false, "three": false} {
		if k.Valid(key) != want {
			t.Errorf("Valid(%q) = %v", key, !want)
		}
	}
	if NewAPIKeys().Valid("") || NewAPIKeys("").Valid("") {
		t.Error("no keys must accept nothing")
	}
}

// A server configured to require an issuer and an audience must accept the
// tokens it mints itself (connect tokens of logged-in users, `sori token`).
func TestMintCarriesConfiguredIssuerAndAudience(t *testing.T) {
	v, err := NewVerifier(VerifierConfig{HMACSecret: secret, Issuer: "https://app.example", Audience: "sori"})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := v.Mint(NewClaims("alice", time.Hour, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("Verify of a minted token: %v", err)
	}
	if got.Issuer != "https://app.example" || len(got.Audience) != 1 || got.Audience[0] != "sori" {
		t.Fatalf("iss %q aud %v", got.Issuer, got.Audience)
	}
}

// TestCheckRefusesRevokedTokens: a check installed on the Verifier refuses
// well-signed tokens as ErrTokenRevoked (an ErrTokenInvalid), sees the
// claims including the generation, and can be removed again.
func TestCheckRefusesRevokedTokens(t *testing.T) {
	v, err := NewVerifier(VerifierConfig{HMACSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	gen := int64(3)
	c := NewClaims("alice", time.Hour, time.Now())
	c.Gen = &gen
	tok, err := v.Mint(c)
	if err != nil {
		t.Fatal(err)
	}
	var seen *Claims
	v.SetCheck(func(c *Claims) error {
		seen = c
		if c.Gen == nil || *c.Gen != 4 {
			return errors.New("generation is not 4")
		}
		return nil
	})
	_, err = v.Verify(tok)
	if !errors.Is(err, ErrTokenRevoked) || !errors.Is(err, ErrTokenInvalid) || errors.Is(err, ErrTokenExpired) {
		t.Fatalf("Verify with a refusing check: %v, want ErrTokenRevoked", err)
	}
	if seen == nil || seen.User() != "alice" || seen.Gen == nil || *seen.Gen != 3 || seen.Issued().IsZero() {
		t.Fatalf("check saw %+v", seen)
	}
	v.SetCheck(nil)
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("Verify without a check: %v", err)
	}
}

// TestCheckUnavailableIsNotInvalid: a check that cannot decide (its store
// failed) makes Verify answer ErrCheckUnavailable, which is not an invalid
// token: callers tell the client to come back, not that its token is bad.
func TestCheckUnavailableIsNotInvalid(t *testing.T) {
	v, err := NewVerifier(VerifierConfig{HMACSecret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := v.Mint(NewClaims("alice", time.Hour, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	storeErr := errors.New("database is locked")
	v.SetCheck(func(*Claims) error { return fmt.Errorf("%w: %w", ErrCheckUnavailable, storeErr) })
	_, err = v.Verify(tok)
	if !errors.Is(err, ErrCheckUnavailable) || !errors.Is(err, storeErr) || errors.Is(err, ErrTokenInvalid) || errors.Is(err, ErrTokenExpired) {
		t.Fatalf("Verify with a failing check: %v, want ErrCheckUnavailable only", err)
	}
}
