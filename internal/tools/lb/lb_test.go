package lb

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
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

// A backend that accepts connections but does not answer its health check
// (a stopped process) gets no requests while another backend is healthy,
// and gets them again once it answers.
func TestCheckSkipsUnhealthyBackends(t *testing.T) {
	var sick atomic.Bool
	sick.Store(true)
	checked := make(chan string, 64)
	mk := func(name string, ill *atomic.Bool) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/readyz" {
				if ill != nil && ill.Load() {
					w.WriteHeader(http.StatusServiceUnavailable)
				}
				select {
				case checked <- name:
				default:
				}
				return
			}
			w.Write([]byte(name))
		}))
		t.Cleanup(s.Close)
		return s.Listener.Addr().String()
	}
	good, bad := mk("good", nil), mk("bad", &sick)
	p, err := New([]string{good, bad}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Check(ctx, "/readyz", 20*time.Millisecond, 5*time.Second)
	for !p.Down(bad) { // the first round marks it
		<-checked
	}
	front := httptest.NewServer(p)
	defer front.Close()
	get := func() string {
		resp, err := http.Get(front.URL)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(b)
	}
	for range 30 {
		if got := get(); got != "good" {
			t.Fatalf("a request reached %q, which fails its health check", got)
		}
	}
	sick.Store(false)
	for p.Down(bad) {
		<-checked
	}
	seen := map[string]bool{}
	for range 60 {
		seen[get()] = true
	}
	if !seen["bad"] {
		t.Fatal("a backend healthy again got none of 60 requests")
	}
}
