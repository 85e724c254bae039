package httpstream_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/session"
	"github.com/sori-dev/sori/internal/transport/httpstream"
)

// rawOpen sends POST /http/open announcing a body of n bytes but sending
// only sent of them, and returns the response the server gives (the client
// waits for it at most 10 s, far above the server's timeouts in these tests).
func rawOpen(t *testing.T, e *env, n int, sent string) *http.Response {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	fmt.Fprintf(nc, "POST %s?transport=longpoll HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		httpstream.PathOpen, n, sent)
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatalf("no answer while the body is incomplete: %v", err)
	}
	resp.Body.Close()
	return resp
}

// Issue 9.5: POST /http/open checks the connection limits before it reads
// the body: a client over its per-IP limit is refused at once, however
// slowly it sends.
func TestOpenChecksLimitsBeforeReadingTheBody(t *testing.T) {
	e := start(t, session.Config{MaxConnectionsPerIP: 1}, httpstream.Options{BodyTimeout: time.Minute})
	e.open("longpoll", "")
	if resp := rawOpen(t, e, 100, ""); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503 (per-IP limit)", resp.StatusCode)
	}
}

// Issue 9.5: a request body trickled byte by byte is cut off after
// BodyTimeout, and the session opened for it does not outlive it.
func TestOpenBodyMustArriveInTime(t *testing.T) {
	e := start(t, session.Config{}, httpstream.Options{BodyTimeout: 200 * time.Millisecond})
	if resp := rawOpen(t, e, 100, `{"id":1,`); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
	// The session opened for it closes (asynchronously, as every close).
	e.waitGone()
}

// Close may be called twice, concurrently (issue 11.4).
func TestHandlerCloseTwiceConcurrently(t *testing.T) {
	e := start(t, session.Config{}, httpstream.Options{})
	e.open("longpoll", "")
	done := make(chan error, 2)
	for range 2 {
		go func() { done <- e.handler.Close(context.Background()) }()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
