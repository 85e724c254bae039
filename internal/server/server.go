// Package server is Sori's composition root: it builds the hub, the session
// node, the transports and the HTTP routes from a config.Config, and runs them
// until a graceful shutdown. It may import every other internal package;
// nothing imports it but cmd/sori and tests.
package server

import (
	"context"
	"errors"
	"fmt"
	"github.com/sori-dev/sori/internal/accounts"
	"github.com/sori-dev/sori/internal/store"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/sori-dev/sori/internal/auth"
	"github.com/sori-dev/sori/internal/chat"
	"github.com/sori-dev/sori/internal/config"
	"github.com/sori-dev/sori/internal/hub"
	"github.com/sori-dev/sori/internal/metrics"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/serverapi"
	"github.com/sori-dev/sori/internal/session"
	"github.com/sori-dev/sori/internal/transport"
	"github.com/sori-dev/sori/internal/transport/ws"
)

// Version is the server version, set by the build (-ldflags) or left as dev.
var Version = "0.1.0-dev"

// Server is one Sori process's HTTP face. Create it with New, start it with
// Serve, stop it with Shutdown.
type Server struct {
	cfg      config.Config
	log      *slog.Logger
	metrics  *metrics.Metrics
	hub      *hub.Hub
	node     *session.Node
	verifier *auth.Verifier
	apiKeys  *auth.APIKeys
	chat     *chat.Service     // set by mountChat
	accounts *accounts.Service // set by mountChat (stream keys authenticate with it)
	store    store.Store       // set by mountChat
	mux      *routeMux
	http     *http.Server
	ready    atomic.Bool
	closers  []func(context.Context) error // extra components, closed in reverse order
	bus      *busLink                      // cluster mode with --nats; nil otherwise (cluster.go)
	drains   []func(context.Context) error // run after the node's shutdown, before the listener closes
	onListen []func(net.Addr)              // told the listener's address by Serve
	probe    *storeProbe                   // cluster mode: is PostgreSQL reachable (readiness.go)
	opts     options
}

// New builds a server from cfg. It creates the data dir and, when no token
// secret or API key is configured, generates them there.
func New(cfg config.Config, log *slog.Logger, opts ...Option) (*Server, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	namespaces, err := hubNamespaces(cfg.Namespaces)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !cfg.ClusterMode() { // a cluster's secrets are configured (Validate)
		secrets, err := config.LoadOrCreateSecrets(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		if cfg.TokenSecret == "" {
			cfg.TokenSecret = secrets.TokenSecret
		}
		if len(cfg.APIKeys) == 0 {
			cfg.APIKeys = []string{secrets.APIKey}
		}
	}
	s := &Server{cfg: cfg, log: log, metrics: metrics.New(), mux: newRouteMux(), opts: o}
	s.verifier, err = auth.NewVerifier(auth.VerifierConfig{
		HMACSecret: []byte(cfg.TokenSecret), PublicKeyFiles: cfg.TokenPublicKeys,
		Issuer: cfg.TokenIssuer, Audience: cfg.TokenAudience,
	})
	if err != nil {
		return nil, err
	}
	s.apiKeys = auth.NewAPIKeys(cfg.APIKeys...)
	broker, err := s.connectBus()
	if err != nil {
		return nil, err
	}
	s.hub, err = hub.New(hub.Config{Namespaces: namespaces, Metrics: s.metrics, Broker: broker})
	if err != nil {
		s.closeBus()
		return nil, err
	}
	s.node = session.NewNode(session.Config{
		MaxConnections:      cfg.MaxConnections,
		MaxConnectionsPerIP: cfg.MaxConnectionsPerIP,
		MaxSubscriptions:    cfg.MaxSubscriptions,
		MaxMessageSize:      cfg.MaxMessageSize,
		QueueBytes:          cfg.QueueBytes,
		CommandRate:         cfg.CommandRate,
		CommandBurst:        cfg.CommandBurst,
		ConnectTimeout:      cfg.ConnectTimeout.D(),
		PingInterval:        cfg.PingInterval.D(),
		AllowAnonymous:      cfg.AllowAnonymous,
		Version:             Version,
		Clock:               o.clock,
	}, s.hub, s.verifier, s.metrics, log)
	if err := s.attachBus(namespaces); err != nil {
		s.hub.Close()
		s.closeBus()
		return nil, err
	}
	s.routes()
	if err := s.mountChat(); err != nil {
		s.abort()
		return nil, err
	}
	// Calls last: they follow chat membership, and nothing is left running
	// (the TURN server) when an earlier step fails.
	if err := s.mountRTC(); err != nil {
		s.abort()
		return nil, err
	}
	s.http = &http.Server{
		Handler:           newBodyGuard(cfg.BodyTimeout.D(), cfg.MaxBodyReadsPerIP).wrap(s.storeGuard(s.mux)),
		ReadHeaderTimeout: cfg.HandshakeTimeout.D(),
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

func (s *Server) routes() {
	s.mux.Handle("GET /ws", ws.NewHandler(s.node, ws.Options{
		MaxMessageSize: s.cfg.MaxMessageSize,
		IdleTimeout:    2 * s.cfg.PingInterval.D(),
		WriteTimeout:   s.cfg.WriteTimeout.D(),
		Compression:    s.cfg.Compression,
		Poll:           s.cfg.WSPoll,
		WritePool:      s.cfg.WSWritePool,
		Origins:        s.Origins(),
		Logger:         s.log,
	}))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		if why := s.storeUnready(); why != "" {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		if why := s.clusterUnready(); why != "" {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	s.mux.Handle("GET /metrics", s.metrics.Handler())
	serverapi.New(serverapi.Config{
		Hub: s.hub, Node: s.node, Verifier: s.verifier, APIKeys: s.apiKeys,
		MaxMessageSize: s.cfg.MaxMessageSize, Log: s.log, Remote: remoteControl{s.bus},
	}).Register(s.mux)
	s.mountWeb()
	s.mountFallback()
}

// abort undoes a New that failed half-way: what was started (the fallback
// transports' sweeper, the node's timers, the hub's janitor) stops.
func (s *Server) abort() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // nothing is connected yet: there is nothing to wait for
	for i := len(s.closers) - 1; i >= 0; i-- {
		_ = s.closers[i](ctx)
	}
	s.node.Close()
	s.hub.Close()
}

// Handle registers an extra route (chat, fallback transports, calls, the web
// app) on the server's mux.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// OnShutdown registers f to run during Shutdown, after client connections
// are closed; later registrations run first.
func (s *Server) OnShutdown(f func(context.Context) error) { s.closers = append(s.closers, f) }

// Origins returns the browser origin policy.
func (s *Server) Origins() transport.OriginPolicy {
	return transport.OriginPolicy{Allowed: s.cfg.AllowedOrigins}
}

// Config returns the effective configuration (with generated secrets filled in).
func (s *Server) Config() config.Config { return s.cfg }

// Hub returns the channel hub.
func (s *Server) Hub() *hub.Hub { return s.hub }

// Node returns the session node.
func (s *Server) Node() *session.Node { return s.node }

// Verifier returns the connection-token verifier (which also mints tokens).
func (s *Server) Verifier() *auth.Verifier { return s.verifier }

// Metrics returns the metrics.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// Logger returns the server's logger.
func (s *Server) Logger() *slog.Logger { return s.log }

// Serve accepts connections on ln until Shutdown. It returns nil after a
// graceful shutdown.
func (s *Server) Serve(ln net.Listener) error {
	for _, f := range s.onListen {
		f(ln.Addr())
	}
	s.ready.Store(true)
	s.log.Info("sori listening", "addr", ln.Addr().String(), "version", Version, "data", s.cfg.DataDir)
	if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server: serve: %w", err)
	}
	return nil
}

// Shutdown stops accepting, closes every client connection with 1001 and a
// reconnect hint, waits for them to drain until ctx ends, then closes the
// remaining components.
func (s *Server) Shutdown(ctx context.Context) error {
	s.ready.Store(false)
	if d := s.cfg.ShutdownDelay.D(); d > 0 {
		// Keep serving while /readyz says 503, so that a load balancer
		// takes this node out before its clients are told to reconnect.
		s.log.Info("draining: not ready, waiting before closing connections", "delay", d)
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
	s.log.Info("shutting down", "connections", s.node.Count())
	// The listener stays open until every client was told to reconnect: a
	// long-poll client between two polls fetches its 1001 with its next
	// poll (drains), and new connections are refused with 1001 meanwhile.
	errs := []error{s.node.Shutdown(ctx, protocol.DisconnectShutdown)}
	for _, drain := range s.drains {
		errs = append(errs, drain(ctx))
	}
	errs = append(errs, s.http.Shutdown(ctx))
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i](ctx))
	}
	s.hub.Close()
	return errors.Join(errs...)
}
