package server

import (
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/sori-dev/sori/internal/httpx"
	"github.com/sori-dev/sori/internal/ratelimit"
)

// bodyMinRate is the slowest average upload a request body may keep up once
// its base time is spent: each 16 KiB read buys one more second. A 25 MiB
// file then has 10 s + 26 min; a body trickled a byte every 2 s has 10 s.
const bodyMinRate = 16 << 10

// bodyGuard bounds request bodies before any handler reads them: at most
// perIP requests per client address may be reading a body at once (the rest
// get 429 at once, before their body is read), and each body must arrive
// within timeout plus one second per bodyMinRate bytes, or its connection
// is cut (the read fails and net/http closes the connection).
//
// The read deadline is the connection's, set through the
// http.ResponseController; it is cleared when the body has been read to its
// end, so that what the handler does next (an SSE stream, a long poll)
// runs unbounded as before. Requests without a body (GET, the WebSocket
// upgrade) are not touched. Safe for concurrent use; mu guards inflight only.
type bodyGuard struct {
	timeout time.Duration
	perIP   int

	mu       sync.Mutex
	inflight map[string]int // client key → requests reading a body
}

func newBodyGuard(timeout time.Duration, perIP int) *bodyGuard {
	return &bodyGuard{timeout: timeout, perIP: perIP, inflight: map[string]int{}}
}

func (g *bodyGuard) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		key := ratelimit.ClientKey(r)
		if !g.acquire(key) {
			w.Header().Set("Connection", "close")
			httpx.WriteRateLimited(w, time.Second, "too many requests with a body in progress from your address")
			return
		}
		b := &guardedBody{ReadCloser: r.Body, rc: http.NewResponseController(w), start: time.Now(), timeout: g.timeout,
			release: func() { g.release(key) }}
		_ = b.rc.SetReadDeadline(b.start.Add(g.timeout))
		r.Body = b
		defer b.finish(false)
		next.ServeHTTP(w, r)
	})
}

func (g *bodyGuard) acquire(key string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inflight[key] >= g.perIP {
		return false
	}
	g.inflight[key]++
	return true
}

func (g *bodyGuard) release(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inflight[key]--; g.inflight[key] <= 0 {
		delete(g.inflight, key) // the table holds only addresses reading now
	}
}

// guardedBody moves the read deadline as bytes arrive and gives the slot
// back when the body ends or the handler returns. Read runs on the
// handler's goroutine; finish may also run there only, so no lock.
type guardedBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	start   time.Time
	timeout time.Duration
	n       int64
	release func()
	done    bool
}

func (b *guardedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	switch {
	case err == io.EOF:
		b.finish(true)
	case n > 0 && !b.done:
		_ = b.rc.SetReadDeadline(b.start.Add(b.timeout + time.Duration(b.n)*time.Second/bodyMinRate))
	}
	return n, err
}

// finish releases the slot once. At the body's end the deadline is lifted
// for the rest of the request; when the handler returns without reading to
// the end, it stays and bounds net/http's discarding of the rest.
func (b *guardedBody) finish(atEOF bool) {
	if b.done {
		return
	}
	b.done = true
	b.release()
	if atEOF {
		_ = b.rc.SetReadDeadline(time.Time{})
	}
}
