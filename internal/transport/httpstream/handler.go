package httpstream

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sori-dev/sori/internal/httpx"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/session"
	"github.com/sori-dev/sori/internal/transport"
	"github.com/sori-dev/sori/internal/transport/netpoll"
)

// Options configures the fallback transports. Zero values take the defaults
// listed with each field.
type Options struct {
	MaxMessageSize int           // bytes per POST body; larger gets 413; default: the node's max message size
	PollWait       time.Duration // longest a long poll is held open; default 25s
	PollHold       time.Duration // a long poll waits this long on its goroutine (keeping its connection) before it parks; default 2s
	SessionTimeout time.Duration // a session without any request or stream for this long closes (4002); default 2× ping interval
	Linger         time.Duration // how long a closed session's last frames (its disconnect push) stay fetchable, counting against the node's connection limits; default 30s
	ReplayBytes    int           // written but unacknowledged bytes kept for a resume; default 1 MiB
	WriteTimeout   time.Duration // one write to a client may block this long; default 10s
	BodyTimeout    time.Duration // a POST body must arrive within this long; default 10s
	Retry          time.Duration // the SSE reconnection delay advertised to EventSource; default 1s
	ShutdownGrace  time.Duration // at shutdown, how long after its last request a client is awaited to fetch its disconnect push (Drain); default 3s
	// NoPark serves every SSE stream and long poll on its request's
	// goroutine, as HTTP/2 requests always are, instead of parking it
	// without one (park.go); for comparison and tests.
	NoPark  bool
	Origins transport.OriginPolicy
	Logger  *slog.Logger
	// Advertise is this node's HTTP address as the other nodes of a
	// cluster reach it (host:port), written into session ids so that any
	// node can pass a session's requests to the node holding it (forward.go).
	// Empty: set later with SetAdvertise, or sessions are not routable.
	Advertise string
	// RouteKey is the key, shared by every node, that signs the address in
	// session ids. Empty: no forwarding (a single node, or sticky routing).
	RouteKey []byte
}

func (o *Options) setDefaults(node session.Config) {
	ping := node.PingInterval
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = node.MaxMessageSize
	}
	if o.PollWait <= 0 {
		o.PollWait = 25 * time.Second
	}
	if o.PollHold <= 0 {
		o.PollHold = 2 * time.Second
	}
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = 2 * ping
	}
	if o.Linger <= 0 {
		o.Linger = 30 * time.Second
	}
	if o.ReplayBytes <= 0 {
		o.ReplayBytes = 1 << 20
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = 10 * time.Second
	}
	if o.Retry <= 0 {
		o.Retry = time.Second
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = 3 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Handler serves the fallback endpoints of one session node and owns their
// HTTP sessions. It is safe for concurrent use; Close stops its sweeper.
type Handler struct {
	node *session.Node
	opts Options

	mu    sync.Mutex
	conns map[string]*conn
	// perIP counts the sessions in conns (and those being opened) by
	// client IP, open and lingering alike. A closed session leaves the node
	// at once but stays in conns for Options.Linger, so without this count
	// a client opening and closing sessions in a loop would grow conns past
	// every limit of the node.
	perIP   map[string]int
	pending int // reserved (counted in perIP) but not yet in conns

	poller    *netpoll.Watcher               // notices clients leaving parked requests
	hooks     struct{ parked, ended func() } // set by tests before any request
	advertise atomic.Pointer[string]
	proxy     *httputil.ReverseProxy
	forwarded atomic.Uint64

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// New returns the handler and starts the sweeper that closes abandoned
// sessions and forgets closed ones.
func New(node *session.Node, opts Options) *Handler {
	opts.setDefaults(node.Config())
	h := &Handler{node: node, opts: opts, conns: map[string]*conn{}, perIP: map[string]int{},
		stop: make(chan struct{}), done: make(chan struct{}), poller: netpoll.New(opts.Logger)}
	if opts.Advertise != "" {
		h.advertise.Store(&opts.Advertise)
	}
	h.proxy = h.newProxy()
	go h.sweep()
	return h
}

// Paths of the fallback endpoints.
const (
	PathOpen  = "/http/open"  // POST: new session (body: optional commands); answers {"session":…}
	PathSend  = "/http/send"  // POST ?session=…[&ack=N]: commands as JSON lines
	PathClose = "/http/close" // POST ?session=…: end the session
	PathSSE   = "/sse"        // GET ?session=…: event stream; Last-Event-ID resumes
	PathPoll  = "/poll"       // GET ?session=…&ack=N[&wait=D]: long (or short, wait=0) poll
)

// Mount registers the endpoints with handle (such as http.ServeMux.Handle).
func (h *Handler) Mount(handle func(pattern string, handler http.Handler)) {
	for _, r := range []struct {
		method, path string
		f            http.HandlerFunc
	}{
		{"POST", PathOpen, h.open}, {"POST", PathSend, h.send}, {"POST", PathClose, h.close},
		{"GET", PathSSE, h.sse}, {"GET", PathPoll, h.poll},
	} {
		handle(r.method+" "+r.path, r.f)
		handle("OPTIONS "+r.path, http.HandlerFunc(h.preflight))
	}
}

// Close stops the sweeper and closes the sessions still open (the node's
// shutdown normally closed them already). It is safe to call more than once,
// concurrently too.
func (h *Handler) Close(context.Context) error {
	h.stopOnce.Do(func() { close(h.stop) })
	<-h.done
	if tr, ok := h.proxy.Transport.(*http.Transport); ok {
		tr.CloseIdleConnections()
	}
	h.mu.Lock()
	cs := make([]*conn, 0, len(h.conns))
	for _, c := range h.conns {
		cs = append(cs, c)
	}
	clear(h.conns)
	clear(h.perIP)
	h.mu.Unlock()
	for _, c := range cs {
		c.Close(protocol.DisconnectShutdown)
	}
	return nil
}

// Drain waits until the clients of the sessions closed so far (by the node's
// shutdown, 1001) have fetched their disconnect push, or ctx ends. The server
// calls it after the node's shutdown and before closing its listener: a
// long-poll client between two polls would otherwise find the port closed
// and never learn that it should reconnect elsewhere. A client that does not
// come back within ShutdownGrace of its last request is not waited for.
func (h *Handler) Drain(ctx context.Context) error {
	h.mu.Lock()
	cs := make([]*conn, 0, len(h.conns))
	for _, c := range h.conns {
		cs = append(cs, c)
	}
	h.mu.Unlock()
	for _, c := range cs {
		if err := c.awaitFetched(ctx, h.opts.ShutdownGrace); err != nil {
			return fmt.Errorf("httpstream: drain: %w", err)
		}
	}
	return nil
}

func (h *Handler) sweep() {
	defer close(h.done)
	t := time.NewTicker(max(h.opts.SessionTimeout/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case now := <-t.C:
			h.sweepOnce(now)
		}
	}
}

func (h *Handler) sweepOnce(now time.Time) {
	var idle []*conn
	h.mu.Lock()
	for id, c := range h.conns {
		c.mu.Lock()
		switch {
		case c.finalized && now.Sub(c.closedAt) > h.opts.Linger:
			delete(h.conns, id)
			h.releaseLocked(c.ip)
		case !c.closing && c.kick == nil && now.Sub(c.lastSeen) > h.opts.SessionTimeout:
			idle = append(idle, c)
		}
		c.mu.Unlock()
	}
	h.mu.Unlock()
	for _, c := range idle {
		c.Close(protocol.DisconnectNoPong.WithReason("HTTP session abandoned: no request within the session timeout"))
	}
}

// reserve counts a new session from ip against the node's limits, which
// here cover lingering sessions too, and returns the Disconnect to refuse
// it with (and true) when a limit is reached. A reservation that does not
// end up in conns is given back with release.
func (h *Handler) reserve(ip string) (protocol.Disconnect, bool) {
	cfg := h.node.Config()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.conns)+h.pending >= cfg.MaxConnections {
		return protocol.DisconnectConnLimit.WithReason("server connection limit reached (closed HTTP sessions count until they expire)"), true
	}
	if h.perIP[ip] >= cfg.MaxConnectionsPerIP {
		return protocol.DisconnectConnLimit.WithReason("per-IP connection limit reached (closed HTTP sessions count until they expire)"), true
	}
	h.perIP[ip]++
	h.pending++
	return protocol.Disconnect{}, false
}

// release gives back a reservation that did not become a session.
func (h *Handler) release(ip string) {
	h.mu.Lock()
	h.pending--
	h.releaseLocked(ip)
	h.mu.Unlock()
}

func (h *Handler) releaseLocked(ip string) {
	if h.perIP[ip]--; h.perIP[ip] <= 0 {
		delete(h.perIP, ip)
	}
}

// errorBody is the JSON body of a refused HTTP request.
type errorBody struct {
	Error      *protocol.Error     `json:"error,omitempty"`
	Disconnect protocol.Disconnect `json:"disconnect,omitzero"`
}

var (
	errUnknownSession = protocol.ErrNotFound.WithMessage("unknown or expired session: open a new one and recover your channels")
	errTooLarge       = protocol.ErrMessageTooLarge.WithMessage("request body over the max message size")
)

// allow applies the Origin policy and, for allowed browser origins, CORS.
// It answers 403 and returns false for a foreign origin.
func (h *Handler) allow(w http.ResponseWriter, r *http.Request) bool {
	if !h.opts.Origins.Check(r) {
		httpx.WriteError(w, protocol.ErrPermissionDenied.WithMessage("origin not allowed"))
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		hd := w.Header()
		hd.Set("Access-Control-Allow-Origin", o)
		hd.Add("Vary", "Origin")
		hd.Set("Access-Control-Expose-Headers", "X-Sori-Seq")
	}
	return true
}

func (h *Handler) preflight(w http.ResponseWriter, r *http.Request) {
	if !h.allow(w, r) {
		return
	}
	hd := w.Header()
	hd.Set("Access-Control-Allow-Methods", "GET, POST")
	hd.Set("Access-Control-Allow-Headers", "Content-Type, Last-Event-ID, X-Sori-Session")
	hd.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// refuseUnread prepares the answer to a request refused before its body was
// read: net/http would otherwise read what is left of the body (up to 256
// KiB, as slowly as the client sends it) to keep the connection alive.
func refuseUnread(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}
}

// readBody reads at most MaxMessageSize bytes within BodyTimeout, answering
// 413 beyond the size and 400 when the body does not arrive in time (a body
// trickled a byte at a time must not hold a request open for ever).
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(h.opts.BodyTimeout))
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(h.opts.MaxMessageSize)))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpx.WriteError(w, errTooLarge)
		} else {
			httpx.WriteError(w, protocol.ErrBadRequest.WithMessage("reading the body failed"))
		}
		return nil, false
	}
	return b, true
}

// lookup finds the request's session ("session" query parameter or the
// X-Sori-Session header: "<id>.<secret>"), answering 404 when there is none.
func (h *Handler) lookup(w http.ResponseWriter, r *http.Request) *conn {
	sid := r.URL.Query().Get("session")
	if sid == "" {
		sid = r.Header.Get("X-Sori-Session")
	}
	id, secret, _ := strings.Cut(sid, ".")
	h.mu.Lock()
	c := h.conns[id]
	h.mu.Unlock()
	if c == nil || subtle.ConstantTimeCompare([]byte(secret), []byte(c.secret)) != 1 {
		httpx.WriteError(w, errUnknownSession)
		return nil
	}
	return c
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// OpenResult is the answer to POST /http/open.
type OpenResult struct {
	Session  string `json:"session"`   // "<id>.<secret>": pass it to every later request
	PollWait int64  `json:"poll_wait"` // seconds a long poll may be held open
	Timeout  int64  `json:"timeout"`   // seconds without any request before the session is closed
}

func (h *Handler) open(w http.ResponseWriter, r *http.Request) {
	if !h.allow(w, r) {
		return
	}
	kind := "sse"
	switch r.URL.Query().Get("transport") {
	case "", "sse":
	case "longpoll", "poll":
		kind = "longpoll"
	default:
		httpx.WriteError(w, protocol.ErrBadRequest.WithMessage("transport must be sse or longpoll"))
		return
	}
	// Limits first: a client over its limit must not hold the server
	// reading a body (issue 9.5).
	ip := transport.ClientIP(r)
	if d, refused := h.reserve(ip); refused {
		refuseUnread(w, r)
		httpx.WriteJSON(w, http.StatusServiceUnavailable, errorBody{Disconnect: d})
		return
	}
	c := &conn{h: h, id: randomString(12) + h.routeTag(), secret: randomString(18), ip: ip, kind: kind, wake: make(chan struct{}, 1), lastSeen: time.Now()}
	// Accept attaches the session to c (conn.Attach) before anything else can reach it.
	if s, refused := h.node.Accept(c, ip); s == nil {
		h.release(ip)
		refuseUnread(w, r)
		httpx.WriteJSON(w, http.StatusServiceUnavailable, errorBody{Disconnect: refused})
		return
	}
	h.mu.Lock()
	h.pending--
	h.conns[c.id] = c
	h.mu.Unlock()
	body, ok := h.readBody(w, r)
	if !ok {
		c.Close(protocol.DisconnectBadRequest.WithReason("reading the open request's body failed"))
		return
	}
	if len(body) > 0 {
		c.handle(body)
	}
	httpx.WriteJSON(w, http.StatusOK, OpenResult{
		Session:  c.id + "." + c.secret,
		PollWait: int64(h.opts.PollWait / time.Second),
		Timeout:  int64(h.opts.SessionTimeout / time.Second),
	})
}

func (h *Handler) send(w http.ResponseWriter, r *http.Request) {
	if h.forward(w, r) {
		return
	}
	if !h.allow(w, r) {
		return
	}
	c := h.lookup(w, r)
	if c == nil {
		return
	}
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	if a := r.URL.Query().Get("ack"); a != "" {
		if n, err := strconv.ParseUint(a, 10, 64); err == nil {
			c.ack(n)
		}
	}
	if len(body) > 0 && !c.handle(body) {
		httpx.WriteError(w, errUnknownSession)
		return
	}
	c.touch()
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) close(w http.ResponseWriter, r *http.Request) {
	if h.forward(w, r) {
		return
	}
	if !h.allow(w, r) {
		return
	}
	if c := h.lookup(w, r); c != nil {
		c.Close(protocol.DisconnectNormal)
		w.WriteHeader(http.StatusNoContent)
	}
}

// position parses a sequence number, 0 when absent; ok is false when malformed.
func position(s string) (uint64, bool) {
	if s == "" {
		return 0, true
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// oldest returns the earliest publication time among es, for metrics.
func oldest(es []entry) int64 {
	var o int64
	for _, e := range es {
		if e.publishedAt != 0 && (o == 0 || e.publishedAt < o) {
			o = e.publishedAt
		}
	}
	return o
}
