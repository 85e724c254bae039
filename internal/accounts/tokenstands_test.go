package accounts

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sori-dev/sori/internal/auth"
	"github.com/sori-dev/sori/internal/store"
)

// TestTokenStands is the rule itself: the generation when the token has
// one, else "iat" in a later second than the last change.
func TestTokenStands(t *testing.T) {
	changed := time.Date(2026, 11, 30, 12, 0, 10, 300_000_000, time.UTC)
	u := store.User{Username: "frank", CredentialsGen: 2, CredentialsChangedAt: changed}
	disabled := u
	disabled.Disabled = true
	gen := func(g int64) *int64 { return &g }
	claims := func(g *int64, iat time.Time) *auth.Claims {
		c := &auth.Claims{Gen: g}
		if !iat.IsZero() {
			c.IssuedAt = jwt.NewNumericDate(iat)
		}
		return c
	}
	for _, tc := range []struct {
		name  string
		user  store.User
		c     *auth.Claims
		stand bool
	}{
		{"current generation", u, claims(gen(2), changed.Add(-time.Hour)), true},
		{"old generation", u, claims(gen(1), changed.Add(time.Hour)), false},
		{"iat a second after", u, claims(nil, changed.Add(time.Second)), true},
		{"iat in the same second", u, claims(nil, changed.Add(100*time.Millisecond)), false},
		{"iat before", u, claims(nil, changed.Add(-time.Minute)), false},
		{"no iat after a change", u, claims(nil, time.Time{}), false},
		{"no iat, never changed", store.User{Username: "new"}, claims(nil, time.Time{}), true},
		{"disabled, current generation", disabled, claims(gen(2), changed.Add(time.Hour)), false},
		{"disabled, iat long after", disabled, claims(nil, changed.Add(time.Hour)), false},
	} {
		if err := TokenStands(tc.user, tc.c); (err == nil) != tc.stand {
			t.Errorf("%s: %v, want stand=%v", tc.name, err, tc.stand)
		}
	}
}
