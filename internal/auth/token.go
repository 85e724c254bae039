package auth

import (
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are what a connection token says about its bearer.
type Claims struct {
	jwt.RegisteredClaims
	// Channels lists channels (exact names, or prefixes ending in "*") the
	// bearer may subscribe to where the namespace asks for a token grant.
	Channels []string `json:"channels,omitempty"`
	// Publish lists channels the bearer may publish to even where only the
	// server may publish.
	Publish []string `json:"publish,omitempty"`
	// Gen is the user's credentials generation when the server minted the
	// token for a logged-in user (POST /api/v1/auth/connect-token): a
	// password change, reset or "log out everywhere" bumps the generation
	// and the token stops working. Tokens minted elsewhere carry none and
	// are judged by their "iat" instead (see Verifier.SetCheck).
	Gen *int64 `json:"sori_gen,omitempty"`
}

// Issued returns the token's "iat", or the zero time if it has none.
func (c *Claims) Issued() time.Time {
	if c.RegisteredClaims.IssuedAt == nil {
		return time.Time{}
	}
	return c.RegisteredClaims.IssuedAt.Time
}

// User returns the token's subject: the user id.
func (c *Claims) User() string { return c.Subject }

// CanSubscribe reports whether the token grants subscribing to channel.
func (c *Claims) CanSubscribe(channel string) bool { return matchAny(c.Channels, channel) }

// CanPublish reports whether the token grants publishing to channel.
func (c *Claims) CanPublish(channel string) bool { return matchAny(c.Publish, channel) }

// ExpiresAt returns when the token expires, or the zero time if it does not.
func (c *Claims) ExpiresAt() time.Time {
	if c.RegisteredClaims.ExpiresAt == nil {
		return time.Time{}
	}
	return c.RegisteredClaims.ExpiresAt.Time
}

func matchAny(patterns []string, channel string) bool {
	for _, p := range patterns {
		if p == channel || (strings.HasSuffix(p, "*") && strings.HasPrefix(channel, p[:len(p)-1])) {
			return true
		}
	}
	return false
}

// Errors a Verifier returns; both wrap the library's reason. ErrTokenRevoked
// (a check refused a well-signed token) wraps ErrTokenInvalid, so callers
// that tell only expired from invalid treat it as invalid.
//
// ErrCheckUnavailable (the check could not decide: its store failed or timed
// out) deliberately wraps neither: the token may well stand, so callers must
// answer "try again" (error 122), never "bad token", which tells a client
// not to reconnect with it.
var (
	ErrTokenExpired     = errors.New("auth: token expired")
	ErrTokenInvalid     = errors.New("auth: token invalid")
	ErrTokenRevoked     = fmt.Errorf("%w: revoked", ErrTokenInvalid)
	ErrCheckUnavailable = errors.New("auth: token check unavailable")
)

// Check decides whether a well-signed, unexpired token still stands: the
// server installs one that refuses tokens issued before the user's last
// credential revocation. It returns nil to accept; an error wrapping
// ErrCheckUnavailable when it cannot decide (Verify passes it on); any
// other error refuses the token (as ErrTokenRevoked).
type Check func(*Claims) error

// Verifier checks connection tokens. It is safe for concurrent use.
type Verifier struct {
	hmacSecret []byte
	publicKeys []crypto.PublicKey
	issuer     string
	audience   string
	now        func() time.Time
	check      atomic.Pointer[Check] // nil = accept every well-signed token
}

// SetCheck installs c, run by every later Verify after the signature and
// time checks pass; nil removes it. Every user of the Verifier (connect,
// refresh, REST bearer JWTs, /rtc/config) gets the same answer, which is why
// the check lives here rather than in each of them.
func (v *Verifier) SetCheck(c Check) {
	if c == nil {
		v.check.Store(nil)
		return
	}
	v.check.Store(&c)
}

// VerifierConfig configures a Verifier. At least one key must be set.
type VerifierConfig struct {
	HMACSecret     []byte             // HS256/384/512
	PublicKeys     []crypto.PublicKey // RSA (RS*, PS*) or ECDSA (ES*) keys
	PublicKeyFiles []string           // PEM files with RSA or ECDSA public keys
	Issuer         string             // if set, tokens must carry this "iss"
	Audience       string             // if set, tokens must carry this "aud"
	Now            func() time.Time   // for tests; nil = time.Now
}

// NewVerifier returns a Verifier for cfg.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	v := &Verifier{hmacSecret: cfg.HMACSecret, publicKeys: cfg.PublicKeys, issuer: cfg.Issuer, audience: cfg.Audience, now: cfg.Now}
	if v.now == nil {
		v.now = time.Now
	}
	for _, f := range cfg.PublicKeyFiles {
		pemBytes, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("auth: read public key: %w", err)
		}
		key, err := parsePublicKey(pemBytes)
		if err != nil {
			return nil, fmt.Errorf("auth: public key %s: %w", f, err)
		}
		v.publicKeys = append(v.publicKeys, key)
	}
	if len(v.hmacSecret) == 0 && len(v.publicKeys) == 0 {
		return nil, errors.New("auth: a token verifier needs an HMAC secret or a public key")
	}
	if len(v.hmacSecret) > 0 && len(v.hmacSecret) < 32 {
		return nil, errors.New("auth: HMAC secret must be at least 32 bytes")
	}
	return v, nil
}

func parsePublicKey(pemBytes []byte) (crypto.PublicKey, error) {
	if k, err := jwt.ParseRSAPublicKeyFromPEM(pemBytes); err == nil {
		return k, nil
	}
	if k, err := jwt.ParseECPublicKeyFromPEM(pemBytes); err == nil {
		return k, nil
	}
	return nil, errors.New("not an RSA or ECDSA public key in PEM")
}

// Verify parses and checks a token: signature, algorithm, expiry (if any),
// not-before, issuer and audience (if configured), and a non-empty subject.
func (v *Verifier) Verify(token string) (*Claims, error) {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}),
		jwt.WithTimeFunc(v.now),
		jwt.WithLeeway(5 * time.Second),
	}
	if v.issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.issuer))
	}
	if v.audience != "" {
		opts = append(opts, jwt.WithAudience(v.audience))
	}
	var lastErr error
	for _, key := range v.keys() {
		claims := &Claims{}
		_, err := jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) { return key.forMethod(t.Method) }, opts...)
		if err == nil {
			if claims.Subject == "" {
				return nil, fmt.Errorf("%w: no subject", ErrTokenInvalid)
			}
			if c := v.check.Load(); c != nil {
				if err := (*c)(claims); errors.Is(err, ErrCheckUnavailable) {
					return nil, err
				} else if err != nil {
					return nil, fmt.Errorf("%w: %v", ErrTokenRevoked, err)
				}
			}
			return claims, nil
		}
		if errors.Is(err, jwt.ErrTokenExpired) {
			return nil, fmt.Errorf("%w: %v", ErrTokenExpired, err)
		}
		lastErr = err
	}
	return nil, fmt.Errorf("%w: %v", ErrTokenInvalid, lastErr)
}

type verifyKey struct {
	hmac []byte
	pub  crypto.PublicKey
}

var errWrongKeyType = errors.New("key does not match the token's algorithm")

func (k verifyKey) forMethod(m jwt.SigningMethod) (any, error) {
	switch m.(type) {
	case *jwt.SigningMethodHMAC:
		if k.hmac != nil {
			return k.hmac, nil
		}
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS, *jwt.SigningMethodECDSA:
		if k.pub != nil {
			return k.pub, nil
		}
	}
	return nil, errWrongKeyType
}

func (v *Verifier) keys() []verifyKey {
	ks := make([]verifyKey, 0, 1+len(v.publicKeys))
	if len(v.hmacSecret) > 0 {
		ks = append(ks, verifyKey{hmac: v.hmacSecret})
	}
	for _, p := range v.publicKeys {
		ks = append(ks, verifyKey{pub: p})
	}
	return ks
}

// Mint signs claims with the HMAC secret (HS256). The server uses it for the
// tokens it issues itself (logged-in chat users, `sori token`). When the
// Verifier requires an issuer or an audience and c carries none, Mint sets
// them, so that the server accepts its own tokens.
func (v *Verifier) Mint(c Claims) (string, error) {
	if len(v.hmacSecret) == 0 {
		return "", errors.New("auth: minting tokens needs an HMAC secret")
	}
	if c.Issuer == "" {
		c.Issuer = v.issuer
	}
	if len(c.Audience) == 0 && v.audience != "" {
		c.Audience = jwt.ClaimStrings{v.audience}
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(v.hmacSecret)
	if err != nil {
		return "", fmt.Errorf("auth: sign token: %w", err)
	}
	return s, nil
}

// NewClaims returns claims for user valid for ttl from now, granting channels.
func NewClaims(user string, ttl time.Duration, now time.Time, channels ...string) Claims {
	c := Claims{Channels: channels}
	c.Subject = user
	c.IssuedAt = jwt.NewNumericDate(now)
	if ttl > 0 {
		c.RegisteredClaims.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	}
	return c
}

// APIKeys checks server API keys in constant time. It keeps and compares
// SHA-256 digests of the keys: subtle.ConstantTimeCompare returns at once
// when the lengths differ, which would tell a prober each key's length.
type APIKeys struct{ keys [][sha256.Size]byte }

// NewAPIKeys returns a checker for the given keys; empty keys are ignored.
func NewAPIKeys(keys ...string) *APIKeys {
	a := &APIKeys{}
	for _, k := range keys {
		if k != "" {
			a.keys = append(a.keys, sha256.Sum256([]byte(k)))
		}
	}
	return a
}

// Valid reports whether key is one of the configured keys.
func (a *APIKeys) Valid(key string) bool {
	sum := sha256.Sum256([]byte(key))
	ok := 0
	for _, k := range a.keys {
		ok |= subtle.ConstantTimeCompare(k[:], sum[:])
	}
	return ok == 1 && key != ""
}
