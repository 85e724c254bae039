package accounts

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id cost parameters (RFC 9106).
//
// DefaultParams follow the OWASP password storage recommendation for
// argon2id (m = 19 MiB, t = 2, p = 1): one hash costs about 20–40 ms of one
// core here, cheap enough for a login and expensive enough for an offline
// guesser. A larger memory cost would make concurrent logins a memory-exhaustion
// lever on a small server; instead the Hasher caps how many hashes run at once
// (so the peak is Concurrency × 19 MiB). Parameters are stored in each hash, so
// they can be raised later without invalidating existing passwords.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
	SaltLen uint32
	KeyLen  uint32
}

// DefaultParams are the production parameters.
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// Hasher hashes and verifies passwords with argon2id. It is safe for
// concurrent use; at most Concurrency hashes run at once and further callers
// wait (respecting their context).
type Hasher struct {
	params Params
	sem    chan struct{}
	dummy  string // a real hash of a random password, verified for unknown users
}

// NewHasher returns a Hasher with p; concurrency <= 0 means GOMAXPROCS.
func NewHasher(p Params, concurrency int) (*Hasher, error) {
	if concurrency <= 0 {
		concurrency = runtime.GOMAXPROCS(0)
	}
	if p.Memory < 8*uint32(max(p.Threads, 1)) || p.Time < 1 || p.Threads < 1 || p.SaltLen < 8 || p.KeyLen < 16 {
		return nil, fmt.Errorf("accounts: argon2id parameters too weak: %+v", p)
	}
	h := &Hasher{params: p, sem: make(chan struct{}, concurrency)}
	var pw [24]byte
	_, _ = rand.Read(pw[:])
	dummy, err := h.Hash(context.Background(), base64.RawURLEncoding.EncodeToString(pw[:]))
	if err != nil {
		return nil, err
	}
	h.dummy = dummy
	return h, nil
}

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("accounts: wait for a password hash slot: %w", ctx.Err())
	}
}

func (h *Hasher) release() { <-h.sem }

// Hash returns password's argon2id hash in the PHC string format
// $argon2id$v=19$m=…,t=…,p=…$salt$key (unpadded base64).
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("accounts: salt: %w", err)
	}
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, h.params.Time, h.params.Memory, h.params.Threads, h.params.KeyLen)
	h.release()
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, h.params.Memory, h.params.Time, h.params.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// errBadHash means a stored hash is not one this package wrote.
var errBadHash = errors.New("accounts: malformed password hash")

// Verify reports whether password matches encoded, comparing in constant
// time. An empty encoded hash (an account that has no password, such as one
// provisioned from an external JWT) never matches, but still costs a full
// hash so that it cannot be told apart by timing.
func (h *Hasher) Verify(ctx context.Context, encoded, password string) (bool, error) {
	if encoded == "" {
		_, err := h.Verify(ctx, h.dummy, password)
		return false, err
	}
	p, salt, want, err := parseHash(encoded)
	if err != nil {
		return false, err
	}
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	h.release()
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// VerifyDummy spends the same time as a real verification and returns false.
// Login calls it for an unknown username, so that the response time does not
// reveal which usernames exist.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) error {
	_, err := h.Verify(ctx, h.dummy, password)
	return err
}

// NeedsRehash reports whether encoded was made with other parameters than
// the Hasher's, so that a successful login can upgrade it.
func (h *Hasher) NeedsRehash(encoded string) bool {
	p, salt, key, err := parseHash(encoded)
	return err != nil || p.Memory != h.params.Memory || p.Time != h.params.Time || p.Threads != h.params.Threads ||
		uint32(len(salt)) != h.params.SaltLen || uint32(len(key)) != h.params.KeyLen
}

func parseHash(encoded string) (Params, []byte, []byte, error) {
	parts := strings.Split(encoded, "$")
	// "", "argon2id", "v=19", "m=…,t=…,p=…", salt, key
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Params{}, nil, nil, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return Params{}, nil, nil, errBadHash
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return Params{}, nil, nil, errBadHash
	}
	// Bound what a tampered row could make us allocate or spin on.
	if p.Memory < 8 || p.Memory > 1<<20 || p.Time < 1 || p.Time > 64 || p.Threads < 1 {
		return Params{}, nil, nil, errBadHash
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 {
		return Params{}, nil, nil, errBadHash
	}
	return p, salt, key, nil
}
