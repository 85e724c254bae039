package lb

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Requests of one client spread over every backend (no stickiness, even
// on one keep-alive connection), and a backend that refuses connections is
// skipped instead of failing the request.
func TestRandomAndSkipsDeadBackends(t *testing.T) {
	var addrs []string
	for i := range 3 {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte{byte('a' + i)}) }))
		t.Cleanup(s.Close)
		addrs = append(addrs, s.Listener.Addr().String())
	}
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	p, err := New(append(addrs, deadAddr), nil)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(p)
	defer front.Close()
	seen := map[string]int{}
	for range 60 {
		resp, err := http.Get(front.URL)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		seen[string(b)]++
	}
	if len(seen) != 3 {
		t.Fatalf("60 requests reached %v: not spread over the 3 live backends", seen)
	}
	if p.Picks(deadAddr) != 0 {
		t.Fatal("a request went to the dead backend")
	}
}
