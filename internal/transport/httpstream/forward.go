package httpstream

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"time"

	"github.com/sori-dev/sori/internal/httpx"
	"github.com/sori-dev/sori/internal/protocol"
)

// Sessions without sticky routing (cluster mode). A session lives on the
// node that opened it. Its id names that node: "<random>~<addr>~<mac>",
// where addr is the node's advertised HTTP address (Options.Advertise) and
// mac an HMAC of it under the key every node shares (Options.RouteKey), so
// that a client cannot make a node send requests to an address of its
// choosing. A request for a session of another node is passed to that node
// unchanged (a reverse proxy: SSE and long polls stream through, the
// holder keeps the outbox, acks and replay budget); when the holder cannot
// be reached the answer is 404 like any unknown session, and the client
// opens a new session anywhere and recovers its channels by offset
// (docs/architecture.md, "HTTP fallback sessions in a cluster").

// ForwardedHeader marks a request a node passed on to the session's
// holder; such a request is never passed on again.
const ForwardedHeader = "X-Sori-Forwarded"

const routeSep = "~"

var errHolderGone = protocol.ErrNotFound.WithMessage("the node holding this session is gone: open a new session and recover your channels")

// route returns the route tag of this node's session ids, "" when sessions
// are not routable (no advertised address or key).
func (h *Handler) routeTag() string {
	addr := h.advertise.Load()
	if addr == nil || *addr == "" || len(h.opts.RouteKey) == 0 {
		return ""
	}
	return routeSep + base64.RawURLEncoding.EncodeToString([]byte(*addr)) + routeSep + h.mac(*addr)
}

func (h *Handler) mac(addr string) string {
	m := hmac.New(sha256.New, h.opts.RouteKey)
	m.Write([]byte("sori httpstream route\x00" + addr))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:12])
}

// SetAdvertise sets the address other nodes reach this node's HTTP server
// at (host:port), for sessions opened from now on. The server calls it when
// it knows its listener's address, unless Options.Advertise was set.
func (h *Handler) SetAdvertise(addr string) {
	if h.opts.Advertise != "" {
		return
	}
	h.advertise.Store(&addr)
}

// holder returns the address of the node holding session id, or "" when
// the id is not routable, names this node, or its tag is forged.
func (h *Handler) holder(id string) string {
	if len(h.opts.RouteKey) == 0 {
		return ""
	}
	parts := strings.Split(id, routeSep)
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	addr := string(b)
	if !hmac.Equal([]byte(parts[2]), []byte(h.mac(addr))) {
		return ""
	}
	if own := h.advertise.Load(); own != nil && *own == addr {
		return ""
	}
	return addr
}

// forward passes r to the node holding its session when that is another
// node, and reports whether it did (then the answer is written).
func (h *Handler) forward(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get(ForwardedHeader) != "" {
		return false // one hop at most: the holder answers itself
	}
	sid := r.URL.Query().Get("session")
	if sid == "" {
		sid = r.Header.Get("X-Sori-Session")
	}
	id, _, _ := strings.Cut(sid, ".")
	addr := h.holder(id)
	if addr == "" {
		return false
	}
	h.mu.Lock()
	_, local := h.conns[id]
	h.mu.Unlock()
	if local {
		return false
	}
	if r.Method == http.MethodPost {
		// Read the body here, within this node's limits, and pass it on
		// whole: the holder then never waits on a slow client through us
		// (its per-address body limits would count every client of this
		// node as one).
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(h.opts.BodyTimeout))
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(h.opts.MaxMessageSize)))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				httpx.WriteError(w, errTooLarge)
			} else {
				httpx.WriteError(w, protocol.ErrBadRequest.WithMessage("reading the body failed"))
			}
			return true
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.ContentLength = int64(len(b))
		r.Header.Set("Content-Length", strconv.Itoa(len(b)))
	}
	h.forwarded.Add(1)
	h.proxy.ServeHTTP(w, r.WithContext(withHolder(r.Context(), addr)))
	return true
}

// newProxy returns the reverse proxy to session holders. The holder's
// address travels in the request context (set by forward, after the MAC
// check), never from the client.
func (h *Handler) newProxy() *httputil.ReverseProxy {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetXForwarded()
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = holderOf(pr.In.Context())
			pr.Out.Host = pr.In.Host
			pr.Out.Header.Set(ForwardedHeader, "1")
		},
		Transport:     tr,
		FlushInterval: -1, // SSE events and poll answers pass through at once
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			h.opts.Logger.Debug("httpstream: session holder unreachable", "holder", holderOf(r.Context()), "err", err)
			httpx.WriteError(w, errHolderGone)
		},
	}
}

// Forwarded returns how many requests this node passed to other nodes.
func (h *Handler) Forwarded() uint64 { return h.forwarded.Load() }
