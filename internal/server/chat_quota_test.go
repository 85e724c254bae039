package server_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/sori-dev/sori/internal/config"
)

// uploadCode uploads body and returns the HTTP status, the error code (0 on
// success) and the Retry-After header.
func uploadCode(t *testing.T, ts *testServer, u chatUser, room int64, body []byte) (status, code int, retry string) {
	t.Helper()
	status, out, h := restDo(t, ts.URL, u.token, "POST", fmt.Sprintf("/api/v1/rooms/%d/files?name=f.bin", room), bytes.NewReader(body), "")
	return status, int(errCode(out)), h.Get("Retry-After")
}

// TestUploadQuota (issue 9.7): one fresh account stored 300 MiB in 1.5 s.
// Each user's stored bytes are bounded (507, error 120), and nothing of a
// refused upload is kept.
func TestUploadQuota(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.UploadQuota = 5000 })
	alice, bob := signup(t, ts.URL, "alice"), signup(t, ts.URL, "bob")
	room := alice.call(t, ts, "POST", "/api/v1/rooms", map[string]any{"name": "files", "kind": "public"}, http.StatusCreated)
	id := int64(room["id"].(float64))
	bob.call(t, ts, "POST", fmt.Sprintf("/api/v1/rooms/%d/join", id), nil, http.StatusOK)

	chunk := []byte(strings.Repeat("x", 2000))
	for i := range 2 {
		if st, code, _ := uploadCode(t, ts, alice, id, chunk); st != http.StatusCreated {
			t.Fatalf("upload %d within the quota: %d/%d", i, st, code)
		}
	}
	if st, code, _ := uploadCode(t, ts, alice, id, chunk); st != http.StatusInsufficientStorage || code != 120 {
		t.Fatalf("upload over the quota: %d/%d, want 507/120", st, code)
	}
	// The refused upload left nothing: 1000 bytes still fit, then none.
	if st, code, _ := uploadCode(t, ts, alice, id, chunk[:1000]); st != http.StatusCreated {
		t.Fatalf("upload into what is left: %d/%d", st, code)
	}
	if st, code, _ := uploadCode(t, ts, alice, id, []byte("y")); code != 120 {
		t.Fatalf("upload at the quota: %d/%d, want 120", st, code)
	}
	// Quotas are per user, and chat goes on.
	if st, code, _ := uploadCode(t, ts, bob, id, chunk); st != http.StatusCreated {
		t.Fatalf("bob's upload: %d/%d", st, code)
	}
	alice.call(t, ts, "POST", fmt.Sprintf("/api/v1/rooms/%d/messages", id), map[string]any{"text": "still here"}, http.StatusCreated)
}

// TestUploadRate: uploads per user are rate limited (429, error 109,
// Retry-After).
func TestUploadRate(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.UploadRate = 0.01; c.UploadBurst = 2 })
	alice := signup(t, ts.URL, "alice")
	room := alice.call(t, ts, "POST", "/api/v1/rooms", map[string]any{"name": "files", "kind": "public"}, http.StatusCreated)
	id := int64(room["id"].(float64))
	for range 2 {
		if st, code, _ := uploadCode(t, ts, alice, id, []byte("x")); st != http.StatusCreated {
			t.Fatalf("upload within the burst: %d/%d", st, code)
		}
	}
	if st, code, retry := uploadCode(t, ts, alice, id, []byte("x")); st != http.StatusTooManyRequests || code != 109 || retry == "" {
		t.Fatalf("upload over the rate: %d/%d Retry-After %q, want 429/109 with Retry-After", st, code, retry)
	}
}

// TestDiskReserve: below the free-space reserve uploads are refused (507,
// error 121) while messages are still stored.
func TestDiskReserve(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.DiskReserve = 1 << 60 }) // more than any disk: "full"
	alice := signup(t, ts.URL, "alice")
	room := alice.call(t, ts, "POST", "/api/v1/rooms", map[string]any{"name": "files", "kind": "public"}, http.StatusCreated)
	id := int64(room["id"].(float64))
	if st, code, _ := uploadCode(t, ts, alice, id, []byte("x")); st != http.StatusInsufficientStorage || code != 121 {
		t.Fatalf("upload below the reserve: %d/%d, want 507/121", st, code)
	}
	alice.call(t, ts, "POST", fmt.Sprintf("/api/v1/rooms/%d/messages", id), map[string]any{"text": "chat goes on"}, http.StatusCreated)
}
