package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sori-dev/sori/internal/auth"
)

// TestTokenHonorsIssuerAndAudience: a token minted by `sori token` for a
// server that requires an issuer and an audience is accepted by it.
func TestTokenHonorsIssuerAndAudience(t *testing.T) {
	secret := strings.Repeat("s", 32)
	var out, errb bytes.Buffer
	err := token([]string{"--user", "alice", "--token-secret", secret, "--token-issuer", "app", "--token-audience", "sori",
		"--data", t.TempDir()}, &out, &errb)
	if err != nil {
		t.Fatalf("token: %v %s", err, errb.String())
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{HMACSecret: []byte(secret), Issuer: "app", Audience: "sori"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(strings.TrimSpace(out.String())); err != nil {
		t.Fatalf("the server would refuse the token: %v", err)
	}
}
