// Package lb is a deliberately non-sticky HTTP load balancer for trying and
// testing Sori's cluster mode: every request (and every WebSocket upgrade)
// goes to a backend chosen at random, on a fresh TCP connection, so two
// requests of one HTTP fallback session rarely reach the same node. A backend
// that refuses the connection is skipped for that request (the request has
// not been sent yet, so trying another is safe), the way a load balancer
// with health checks stops sending to a dead node. With Check running, a
// backend whose readiness endpoint does not answer 200 in time (a stopped
// process accepts connections but never answers; a node cut off from NATS
// or PostgreSQL answers 503) gets no new requests until it answers again.
// It must never import server, session, hub or chat: it only moves bytes.
package lb

import (
	"context"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy is the balancer. It is safe for concurrent use; Set replaces the
// backends while requests are in flight.
type Proxy struct {
	mu       sync.Mutex
	backends []string // host:port

	rp     *httputil.ReverseProxy
	dialer net.Dialer
	picks  sync.Map // host:port -> *atomic.Int64, requests sent there
	down   sync.Map // host:port -> struct{}: failed its last health check (see Check)
}

// New returns a proxy in front of backends (host:port or http://host:port).
func New(backends []string, log *slog.Logger) (*Proxy, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{dialer: net.Dialer{Timeout: 2 * time.Second}}
	if err := p.Set(backends); err != nil {
		return nil, err
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetXForwarded()
			r.Out.URL.Scheme = "http"
			r.Out.URL.Host = "backend" // dial picks the real one
			r.Out.Host = r.In.Host
		},
		Transport: &http.Transport{
			DialContext:       p.dial,
			DisableKeepAlives: true, // a new connection, so a new random node, per request
			ForceAttemptHTTP2: false,
		},
		FlushInterval: -1, // SSE and long polls: pass every write through at once
		// A stream cut by a killed node is routine here, not worth a line.
		ErrorLog: stdlog.New(io.Discard, "", 0),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			log.Debug("lb: backend failed", "path", r.URL.Path, "err", err)
			http.Error(w, "lb: no backend answered: "+err.Error(), http.StatusBadGateway)
		},
	}
	return p, nil
}

// Set replaces the list of backends.
func (p *Proxy) Set(backends []string) error {
	bs := make([]string, 0, len(backends))
	for _, b := range backends {
		if u, err := url.Parse(b); err == nil && u.Host != "" {
			b = u.Host
		}
		if _, _, err := net.SplitHostPort(b); err != nil {
			return fmt.Errorf("lb: backend %q: want host:port", b)
		}
		bs = append(bs, b)
	}
	if len(bs) == 0 {
		return errors.New("lb: no backend")
	}
	p.mu.Lock()
	p.backends = bs
	p.mu.Unlock()
	return nil
}

// Picks returns how many requests (and upgrades) went to backend.
func (p *Proxy) Picks(backend string) int64 {
	if v, ok := p.picks.Load(backend); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

// dial connects to a random backend, trying the others in random order
// when one refuses.
func (p *Proxy) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	p.mu.Lock()
	all := append([]string(nil), p.backends...)
	p.mu.Unlock()
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	// Healthy backends first; the unhealthy ones stay a last resort (when
	// every check failed, the checks are more likely wrong than the nodes).
	order := make([]string, 0, len(all))
	var later []string
	for _, b := range all {
		if _, down := p.down.Load(b); down {
			later = append(later, b)
		} else {
			order = append(order, b)
		}
	}
	order = append(order, later...)
	var errs []error
	for _, b := range order {
		c, err := p.dialer.DialContext(ctx, network, b)
		if err == nil {
			v, _ := p.picks.LoadOrStore(b, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("lb: every backend refused: %w", errors.Join(errs...))
}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.rp.ServeHTTP(w, r) }

// Down reports whether backend failed its last health check.
func (p *Proxy) Down(backend string) bool {
	_, down := p.down.Load(backend)
	return down
}

// Check asks every backend for path (e.g. "/readyz") every `every`, in
// parallel, and takes a backend out of rotation while its answer is not 200
// within timeout; it runs until ctx ends. A stopped (SIGSTOP) node still
// accepts TCP connections, so only a check like this one keeps new clients
// away from it.
func (p *Proxy) Check(ctx context.Context, path string, every, timeout time.Duration) {
	hc := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		p.mu.Lock()
		bs := append([]string(nil), p.backends...)
		p.mu.Unlock()
		var wg sync.WaitGroup
		for _, b := range bs {
			wg.Go(func() {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b+path, nil)
				resp, err := hc.Do(req)
				ok := err == nil && resp.StatusCode == http.StatusOK
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if ok {
					p.down.Delete(b)
				} else if ctx.Err() == nil {
					p.down.Store(b, struct{}{})
				}
			})
		}
		wg.Wait()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
