package httpstream_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/session"
	"github.com/sori-dev/sori/internal/transport/httpstream"
)

// heldGoroutines counts the goroutines that are waiting (blocked on I/O, a
// channel, a lock, a select): the ones holding a stack for something. One
// that is runnable or running is doing work or on its way out, so a count
// of the waiting ones needs no wait for stragglers to exit.
func heldGoroutines(t *testing.T) int {
	t.Helper()
	var b bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&b, 2); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(b.String(), "\n") {
		if !strings.HasPrefix(line, "goroutine ") {
			continue
		}
		if !strings.Contains(line, "[runnable") && !strings.Contains(line, "[running") {
			n++
		}
	}
	return n
}

// rawGet sends a GET on a connection of its own (no client goroutine holds
// it: only the test reads it, when it wants).
func rawGet(t *testing.T, e *env, path string) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	if _, err := fmt.Fprintf(nc, "GET %s HTTP/1.1\r\nHost: sori\r\n\r\n", path); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	return nc, bufio.NewReader(nc)
}

// idleSessions opens n SSE streams and n parked long polls on raw
// connections, each with a connected session, and returns the goroutines
// held beyond those held before, with the client sockets.
func idleSessions(t *testing.T, e *env, n int, parkedEv chan struct{}, park bool) (grew int, socks []net.Conn) {
	t.Helper()
	sse := make([]string, n)
	polls := make([]string, n)
	for i := range n {
		// A user each: the node bounds connections per user.
		connect := fmt.Sprintf(`{"id":1,"op":"connect","token":%q}`, e.token(fmt.Sprintf("u%d", i)))
		sse[i], polls[i] = e.open("sse", connect), e.open("longpoll", connect)
	}
	e.client.Transport.(*http.Transport).CloseIdleConnections()
	before := heldGoroutines(t)
	for i := range n {
		// An SSE stream, read up to its first event (the connect reply).
		nc, br := rawGet(t, e, httpstream.PathSSE+"?session="+sse[i])
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("sse stream %d: %v", i, err)
			}
			if strings.HasPrefix(line, "data: ") {
				break
			}
		}
		socks = append(socks, nc)
		// A long poll that takes the connect reply, then one that waits.
		nc, br = rawGet(t, e, httpstream.PathPoll+"?session="+polls[i]+"&ack=0")
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("first poll %d: %v %v", i, resp, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		seq, _ := strconv.ParseUint(resp.Header.Get("X-Sori-Seq"), 10, 64)
		if _, err := fmt.Fprintf(nc, "GET %s?session=%s&ack=%d&wait=60s HTTP/1.1\r\nHost: sori\r\n\r\n", httpstream.PathPoll, polls[i], seq); err != nil {
			t.Fatal(err)
		}
		socks = append(socks, nc)
	}
	// Served on goroutines (!park), the SSE handlers have written their
	// first event; nothing tells when the polls wait (see the caller).
	if park {
		for range 2 * n {
			<-parkedEv // every request parked, its first pass done
		}
	}
	return heldGoroutines(t) - before, socks
}

// TestIdleSSEAndLongPollHoldNoGoroutine opens N SSE streams and N long
// polls waiting for frames and counts the goroutines they hold: parked,
// o(N) (the poller's goroutine); served on their goroutines (NoPark, as
// HTTP/2 is), two each, which shows the count can fail. Closing the client
// sockets releases every parked request.
func TestIdleSSEAndLongPollHoldNoGoroutine(t *testing.T) {
	const n = 100
	t.Run("parked", func(t *testing.T) {
		parkedEv, ended := make(chan struct{}, 2*n), make(chan struct{}, 2*n)
		// Polls wait 1 ms on their goroutine before they park.
		e := start(t, session.Config{PingInterval: time.Hour}, httpstream.Options{PollHold: time.Millisecond})
		e.handler.SetParkHooks(func() { parkedEv <- struct{}{} }, func() { ended <- struct{}{} })
		grew, socks := idleSessions(t, e, n, parkedEv, true)
		t.Logf("%d SSE streams + %d parked long polls: %d more goroutines held", n, n, grew)
		if grew >= 2*n/10 {
			t.Errorf("goroutines held grew by %d for %d idle requests, want o(N) (< %d)", grew, 2*n, 2*n/10)
		}
		before := heldGoroutines(t)
		for _, nc := range socks {
			_ = nc.Close()
		}
		for range 2 * n {
			<-ended // each client leaving ends its request (netpoll readiness)
		}
		if after := heldGoroutines(t); after > before {
			t.Errorf("after the clients left, %d goroutines held, %d before", after, before)
		}
	})
	t.Run("goroutines", func(t *testing.T) {
		e := start(t, session.Config{PingInterval: time.Hour}, httpstream.Options{NoPark: true})
		grew, _ := idleSessions(t, e, n, nil, false)
		t.Logf("NoPark: %d SSE streams + %d long polls: %d more goroutines held", n, n, grew)
		// Two per request; the last few polls may not be waiting yet.
		if grew < 3*n {
			t.Errorf("served on goroutines, %d idle requests held %d more goroutines, want at least %d", 2*n, grew, 3*n)
		}
	})
}
