package push

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Key is the server's VAPID key pair (RFC 8292): an ECDSA P-256 key whose
// public half browsers bind a subscription to (applicationServerKey), and
// whose private half signs the JWT of every push request.
type Key struct {
	priv *ecdsa.PrivateKey
}

// GenerateKey returns a new random key.
func GenerateKey() (*Key, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("push: generate VAPID key: %w", err)
	}
	return &Key{priv: k}, nil
}

// ParseKey reads a private key written by Key.String: the 32-byte scalar,
// base64url without padding (the form web-push tools print).
func ParseKey(s string) (*Key, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != 32 {
		return nil, errors.New("push: a VAPID private key is 32 bytes, base64url without padding")
	}
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), b)
	if err != nil {
		return nil, fmt.Errorf("push: VAPID private key: %w", err)
	}
	return &Key{priv: k}, nil
}

// String returns the private key as ParseKey reads it. It is a secret.
func (k *Key) String() string {
	b, _ := k.priv.Bytes()
	return base64.RawURLEncoding.EncodeToString(b)
}

// PublicKey returns the public key as an uncompressed P-256 point (65
// bytes): what a browser's pushManager.subscribe takes as
// applicationServerKey, and the k= of the Authorization header.
func (k *Key) PublicKey() []byte {
	b, _ := k.priv.PublicKey.Bytes()
	return b
}

// KeyFile is where LoadOrCreateKey keeps the key, inside the data dir.
const KeyFile = "vapid.key"

// LoadOrCreateKey reads the data dir's VAPID key, creating it (mode 0600)
// on first use, whole or not at all (written under a temporary name, then
// hard-linked into place, so two processes end up with the same key).
// Browsers bind subscriptions to it: a new key makes every existing
// subscription fail, so it is kept with the data.
func LoadOrCreateKey(dataDir string) (*Key, error) {
	path := filepath.Join(dataDir, KeyFile)
	if b, err := os.ReadFile(path); err == nil {
		return ParseKey(string(b))
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("push: read VAPID key: %w", err)
	}
	k, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("push: create data dir: %w", err)
	}
	f, err := os.CreateTemp(dataDir, KeyFile+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("push: write VAPID key: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.WriteString(k.String() + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("push: write VAPID key: %w", err)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return LoadOrCreateKey(dataDir)
		}
		return nil, fmt.Errorf("push: write VAPID key: %w", err)
	}
	return k, nil
}

// tokenTTL is the lifetime of a VAPID JWT: RFC 8292 allows up to 24 h; 12 h
// leaves room for clock skew at the push service.
const tokenTTL = 12 * time.Hour

// authorization returns the Authorization header of a push request to
// endpoint: "vapid t=<JWT>, k=<public key>" (RFC 8292 section 3), the JWT
// signed with ES256 for the endpoint's origin.
func (k *Key) authorization(endpoint, subject string, now time.Time) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("push: endpoint: %w", err)
	}
	header := b64json(map[string]string{"typ": "JWT", "alg": "ES256"})
	claims := b64json(map[string]any{"aud": u.Scheme + "://" + u.Host, "exp": now.Add(tokenTTL).Unix(), "sub": subject})
	signed := header + "." + claims
	sum := sha256.Sum256([]byte(signed))
	r, s, err := ecdsa.Sign(rand.Reader, k.priv, sum[:])
	if err != nil {
		return "", fmt.Errorf("push: sign VAPID token: %w", err)
	}
	// JWS ES256 is r and s as two 32-byte big-endian numbers (RFC 7518),
	// not ASN.1.
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return "vapid t=" + signed + "." + base64.RawURLEncoding.EncodeToString(sig) + ", k=" + base64.RawURLEncoding.EncodeToString(k.PublicKey()), nil
}

func b64json(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}
