package server_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/config"
	"github.com/sori-dev/sori/internal/store/postgres/pgtest"
)

// pgRelay passes TCP connections to the test PostgreSQL server until cut:
// then it closes every connection and refuses new ones, as a network
// partition or a dead database server would look to the node.
type pgRelay struct {
	ln     net.Listener
	target func() (net.Conn, error)
	mu     sync.Mutex
	cut    bool
	conns  []net.Conn
}

// relayDSN returns a DSN for dsn's database that goes through a relay.
func relayDSN(t *testing.T, dsn string) (string, *pgRelay) {
	t.Helper()
	field := func(k string) string {
		m := regexp.MustCompile(`(?:^|\s)` + k + `=(\S+)`).FindStringSubmatch(dsn)
		if m == nil {
			return ""
		}
		return m[1]
	}
	host, port := field("host"), field("port")
	if port == "" {
		port = "5432"
	}
	r := &pgRelay{target: func() (net.Conn, error) {
		if strings.HasPrefix(host, "/") {
			return net.Dial("unix", host+"/.s.PGSQL."+port)
		}
		return net.Dial("tcp", net.JoinHostPort(host, port))
	}}
	var err error
	if r.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.ln.Close(); r.setCut(true) })
	go r.serve()
	// A later keyword wins in a keyword/value DSN.
	return dsn + " host=127.0.0.1 port=" + strconv.Itoa(r.ln.Addr().(*net.TCPAddr).Port) + " sslmode=disable", r
}

func (r *pgRelay) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		if r.cut {
			r.mu.Unlock()
			c.Close()
			continue
		}
		up, err := r.target()
		if err != nil {
			r.mu.Unlock()
			c.Close()
			continue
		}
		r.conns = append(r.conns, c, up)
		r.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() { _, _ = io.Copy(c, up); c.Close() }()
	}
}

func (r *pgRelay) setCut(cut bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cut = cut
	if cut {
		for _, c := range r.conns {
			c.Close()
		}
		r.conns = nil
	}
}

// A node that loses PostgreSQL says so on /readyz and refuses, with 503
// and error 122, REST calls and new real-time connections (which it could
// not authenticate correctly); /healthz stays 200 (the process is alive).
// Once the database is reachable again, so is the node.
func TestReadyzAndRefusalsFollowTheStore(t *testing.T) {
	dsn, relay := relayDSN(t, pgtest.Schema(t))
	node := startServer(t, func(c *config.Config) { c.Postgres = dsn })
	alice := signup(t, node.URL, "alice")
	get := func(path, token string) (int, map[string]any) {
		req, _ := http.NewRequest("GET", node.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	waitReadyz := func(want int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second) // only ends a broken test
		for {
			if code, _ := get("/readyz", ""); code == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz never answered %d", want)
			}
			time.Sleep(50 * time.Millisecond) // polling an HTTP endpoint: no event to wait on
		}
	}
	waitReadyz(http.StatusOK)
	if code, _ := get("/api/v1/rooms", alice.token); code != http.StatusOK {
		t.Fatalf("rooms before the cut: %d", code)
	}

	relay.setCut(true)
	waitReadyz(http.StatusServiceUnavailable)
	code, body := get("/api/v1/rooms", alice.token)
	if e, _ := body["error"].(map[string]any); code != http.StatusServiceUnavailable || e == nil || e["code"] != float64(122) {
		t.Fatalf("REST without the store: %d %v, want 503 with error 122", code, body)
	}
	for _, path := range []string{"/ws", "/http/open"} {
		method := "GET"
		if path == "/http/open" {
			method = "POST"
		}
		req, _ := http.NewRequest(method, node.URL+path, nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%s %s without the store: %d, want 503 with Retry-After", method, path, resp.StatusCode)
		}
	}
	if code, _ := get("/healthz", ""); code != http.StatusOK {
		t.Fatalf("healthz without the store: %d", code)
	}

	relay.setCut(false)
	waitReadyz(http.StatusOK)
	if code, _ := get("/api/v1/rooms", alice.token); code != http.StatusOK {
		t.Fatalf("rooms after the store came back: %d", code)
	}
}
