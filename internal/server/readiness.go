package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sori-dev/sori/internal/httpx"
	"github.com/sori-dev/sori/internal/protocol"
)

// Store probe timing: a probe each storeProbeEvery, each allowed
// storeProbeTimeout, and storeProbeFailures failures in a row before the
// node calls the store unreachable (one slow probe on a loaded machine
// must not flap readiness). Detection therefore takes 2–6 s.
const (
	storeProbeEvery    = time.Second
	storeProbeTimeout  = 2 * time.Second
	storeProbeFailures = 2
)

// storeProbe watches whether this node reaches the PostgreSQL store, on a
// connection of its own (the store's pool may be busy or waiting on locks,
// which is not unreachability). Safe for concurrent use.
type storeProbe struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	down atomic.Bool
	stop chan struct{}
	done chan struct{}
	once sync.Once // Shutdown may run twice
}

func newStoreProbe(dsn string, log *slog.Logger) (*storeProbe, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("server: store probe: %w", err)
	}
	cfg.MaxConns = 1
	if cfg.ConnConfig.ConnectTimeout == 0 || cfg.ConnConfig.ConnectTimeout > storeProbeTimeout {
		cfg.ConnConfig.ConnectTimeout = storeProbeTimeout
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg) // connects lazily
	if err != nil {
		return nil, fmt.Errorf("server: store probe: %w", err)
	}
	p := &storeProbe{pool: pool, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p, nil
}

func (p *storeProbe) run() {
	defer close(p.done)
	t := time.NewTicker(storeProbeEvery)
	defer t.Stop()
	fails := 0
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), storeProbeTimeout)
		err := p.pool.Ping(ctx)
		cancel()
		switch {
		case err == nil:
			fails = 0
			if p.down.Swap(false) {
				p.log.Info("chat store reachable again: ready")
			}
		case fails+1 >= storeProbeFailures:
			fails++
			if !p.down.Swap(true) {
				p.log.Warn("chat store unreachable: not ready, refusing new connections and REST calls", "err", err)
			}
		default:
			fails++
		}
	}
}

func (p *storeProbe) close(context.Context) error {
	p.once.Do(func() {
		close(p.stop)
		<-p.done
		p.pool.Close()
	})
	return nil
}

// storeUnready says why this node should get no new clients because of its
// store, or "".
func (s *Server) storeUnready() string {
	if s.probe != nil && s.probe.down.Load() {
		return "no connection to PostgreSQL"
	}
	return ""
}

// storeGuard wraps the server's handler in cluster mode (--postgres): while
// the store is unreachable it refuses, with 503 and error 122, what it
// cannot serve correctly — the REST API (/api/v1/…: accounts, rooms,
// messages, files all live in the store) and new real-time connections
// (/ws, /http/open: a connection token is checked against the store for
// revocation, and while that check fails the connect can only answer 122).
// The 503 before the upgrade makes clients
// retry, through the load balancer, on a node that is ready. Connections
// already open stay: their chat commands fail with an error until the
// store is back, other channels keep working (docs/operations.md,
// "What each failure does to clients").
func (s *Server) storeGuard(h http.Handler) http.Handler {
	if s.cfg.Postgres == "" {
		return h
	}
	p, err := newStoreProbe(s.cfg.Postgres, s.log)
	if err != nil {
		s.log.Warn("no store probe: /readyz will not report PostgreSQL loss", "err", err)
		return h
	}
	s.probe = p
	s.OnShutdown(p.close)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.down.Load() && refusedWithoutStore(r) {
			w.Header().Set("Retry-After", "5")
			httpx.WriteError(w, protocol.ErrStoreDown)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// refusedWithoutStore reports whether r needs the store to be served
// correctly from its first byte.
func refusedWithoutStore(r *http.Request) bool {
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, "/api/v1/"):
		return true
	case p == "/ws", p == "/http/open":
		return true
	}
	return false
}
