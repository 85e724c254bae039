package server_test

import (
	"fmt"
	"net/http"
	"testing"
)

// TestMessagesAfterZeroStartsAtTheFirst (issue 9.9): ?after=0&limit=N used
// to answer the newest N; it is the first N, oldest first.
func TestMessagesAfterZeroStartsAtTheFirst(t *testing.T) {
	ts := startServer(t, nil)
	alice := signup(t, ts.URL, "alice")
	room := alice.call(t, ts, "POST", "/api/v1/rooms", map[string]any{"name": "log", "kind": "public"}, http.StatusCreated)
	base := fmt.Sprintf("/api/v1/rooms/%d/messages", int64(room["id"].(float64)))
	for i := 1; i <= 5; i++ {
		alice.call(t, ts, "POST", base, map[string]any{"text": fmt.Sprintf("m%d", i)}, http.StatusCreated)
	}
	seqs := func(query string) []uint64 {
		out := alice.call(t, ts, "GET", base+"?"+query, nil, http.StatusOK)
		var s []uint64
		for _, m := range out["messages"].([]any) {
			s = append(s, num(m.(map[string]any)["seq"]))
		}
		return s
	}
	for query, want := range map[string]string{
		"after=0&limit=2":  "[1 2]",
		"after=2&limit=2":  "[3 4]",
		"after=4":          "[5]",
		"limit=2":          "[4 5]",
		"before=3&limit=5": "[1 2]",
	} {
		if got := fmt.Sprint(seqs(query)); got != want {
			t.Errorf("?%s: seqs %s, want %s", query, got, want)
		}
	}
	alice.call(t, ts, "GET", base+"?after=0&before=3", nil, http.StatusBadRequest)
}
