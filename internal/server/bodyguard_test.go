package server_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/config"
)

// trickle opens a TCP connection from local (nil: any) and starts a request
// with a 100-byte body of which it sends one byte, then one more every
// interval until the server closes the connection.
func trickle(t *testing.T, ts *testServer, local net.Addr, path string, interval time.Duration) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: local}
	c, err := d.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: sori\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", path)
	if interval > 0 {
		go func() {
			for {
				time.Sleep(interval)
				if _, err := c.Write([]byte(" ")); err != nil {
					return
				}
			}
		}()
	}
	return c
}

// TestSlowBodyIsCutOff: a request body trickled a byte at a time, without
// logging in, is cut off once its time is spent (it used to stay open for
// ever), on the fallback transport's open and on login alike.
func TestSlowBodyIsCutOff(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.BodyTimeout = config.Duration(300 * time.Millisecond) })
	for _, path := range []string{"/http/open", "/api/v1/auth/login"} {
		c := trickle(t, ts, nil, path, 50*time.Millisecond)
		// The bound is the test's patience, not the server's timing: the
		// server must end the connection at all.
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		// EOF or a reset (the server closed with our bytes unread) both end it.
		if _, err := io.Copy(io.Discard, c); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%s: a trickled body was still open after 30 s: %v", path, err)
		}
	}
}

// TestTricklersDoNotLockOthersOut: a thousand trickled bodies from one
// address hold at most --max-body-reads-per-ip of the server (the rest get
// 429 before their body is read), and a client at another address is served.
func TestTricklersDoNotLockOthersOut(t *testing.T) {
	const n, perIP = 1000, 64
	ts := startServer(t, func(c *config.Config) {
		c.BodyTimeout = config.Duration(time.Hour) // only the cap is at work
		c.MaxBodyReadsPerIP = perIP
		c.MaxConnectionsPerIP = 100000
	})
	attacker := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}
	var refused atomic.Int64
	var wg sync.WaitGroup
	conns := make([]net.Conn, 0, n)
	for range n {
		c := trickle(t, ts, attacker, "/http/open", 0)
		conns = append(conns, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err == nil && resp.StatusCode == http.StatusTooManyRequests {
				refused.Add(1)
			}
		}()
	}
	// Wait until every request beyond the cap has its answer; the ones
	// holding a slot wait for their body until the test closes them.
	for deadline := time.Now().Add(60 * time.Second); refused.Load() < n-perIP; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 60 s, %d of %d trickled requests were refused; want all but %d", refused.Load(), n, perIP)
		}
	}

	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/publish", strings.NewReader(`{"channel":"room:x","data":1}`))
	req.Header.Set("Authorization", "apikey "+ts.APIKey)
	resp, err := other.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a client at another address got %d while one address trickled %d bodies", resp.StatusCode, n)
	}
	other.CloseIdleConnections()
	if got := refused.Load(); got != n-perIP {
		t.Fatalf("%d of %d trickled requests refused, want %d", got, n, n-perIP)
	}
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
}
