package accounts

import (
	"context"
	"strings"
	"testing"
)

// fastParams keep tests quick; the format and code paths are the same.
var fastParams = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func newTestHasher(t *testing.T, p Params) *Hasher {
	t.Helper()
	h, err := NewHasher(p, 2)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHashVerify(t *testing.T) {
	ctx := context.Background()
	h := newTestHasher(t, DefaultParams)
	enc, err := h.Hash(ctx, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q: not the PHC argon2id format with the default parameters", enc)
	}
	if ok, err := h.Verify(ctx, enc, "correct horse battery"); err != nil || !ok {
		t.Fatalf("right password: ok=%v err=%v", ok, err)
	}
	if ok, err := h.Verify(ctx, enc, "correct horse batterx"); err != nil || ok {
		t.Fatalf("wrong password: ok=%v err=%v", ok, err)
	}
	again, _ := h.Hash(ctx, "correct horse battery")
	if again == enc {
		t.Fatal("two hashes of one password are equal: salt is not random")
	}
	if h.NeedsRehash(enc) {
		t.Fatal("a fresh hash needs no rehash")
	}
	if !newTestHasher(t, fastParams).NeedsRehash(enc) {
		t.Fatal("a hash with other parameters must need a rehash")
	}
}

func TestVerifyRejectsBadHashes(t *testing.T) {
	ctx := context.Background()
	h := newTestHasher(t, fastParams)
	good, _ := h.Hash(ctx, "password1")
	parts := strings.Split(good, "$")
	for name, enc := range map[string]string{
		"bcrypt":        "$2a$10$abcdefghijklmnopqrstuv",
		"wrong version": strings.Replace(good, "v=19", "v=16", 1),
		"huge memory":   "$argon2id$v=19$m=99999999,t=1,p=1$" + parts[4] + "$" + parts[5],
		"bad salt":      "$argon2id$v=19$m=64,t=1,p=1$!!!$" + parts[5],
		"short key":     "$argon2id$v=19$m=64,t=1,p=1$" + parts[4] + "$AAAA",
		"missing part":  "$argon2id$v=19$m=64,t=1,p=1$" + parts[4],
	} {
		if ok, err := h.Verify(ctx, enc, "password1"); err == nil || ok {
			t.Errorf("%s: ok=%v err=%v, want an error", name, ok, err)
		}
	}
	// An account without a password never matches, whatever is typed.
	if ok, err := h.Verify(ctx, "", ""); err != nil || ok {
		t.Fatalf("empty hash: ok=%v err=%v", ok, err)
	}
}

func TestHasherRespectsContext(t *testing.T) {
	h := newTestHasher(t, fastParams)
	// Fill every slot, so that the next hash has to wait for one.
	for range cap(h.sem) {
		h.sem <- struct{}{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Hash(ctx, "password1"); err == nil {
		t.Fatal("hash with every slot taken and a cancelled context succeeded")
	}
}

func TestNewHasherRejectsWeakParams(t *testing.T) {
	for _, p := range []Params{{Memory: 64, Time: 0, Threads: 1, SaltLen: 16, KeyLen: 32}, {Memory: 64, Time: 1, Threads: 1, SaltLen: 4, KeyLen: 32}} {
		if _, err := NewHasher(p, 1); err == nil {
			t.Errorf("NewHasher(%+v) accepted weak parameters", p)
		}
	}
}

func TestValidateUsernameAndPassword(t *testing.T) {
	for _, ok := range []string{"al", "alice", "Bob_2", "x.y-z", strings.Repeat("a", 32)} {
		if err := ValidateUsername(ok); err != nil {
			t.Errorf("ValidateUsername(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a", strings.Repeat("a", 33), "_alice", "al ice", "élodie", "a\x00b", "a/b", "a:b"} {
		if err := ValidateUsername(bad); err == nil || err.Code != 101 {
			t.Errorf("ValidateUsername(%q) = %v, want 101", bad, err)
		}
	}
	for _, ok := range []string{"12345678", "pässwörd", "with spaces ok"} {
		if err := ValidatePassword(ok); err != nil {
			t.Errorf("ValidatePassword(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"short", "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8", "tab\there!", strings.Repeat("p", 257)} {
		if err := ValidatePassword(bad); err == nil {
			t.Errorf("ValidatePassword(%q) accepted", bad)
		}
	}
}
