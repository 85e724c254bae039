package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"net"

	"github.com/sori-dev/sori/internal/transport/httpstream"
)

// mountFallback serves the transports for clients without WebSocket: SSE +
// POST and long polling (see docs/transports.md). Their sessions share the
// node, limits and protocol with /ws. In cluster mode a session's requests
// may reach any node: the others pass them to the node holding it, at the
// address written (and signed) into the session id (docs/architecture.md,
// "HTTP fallback sessions in a cluster").
func (s *Server) mountFallback() {
	opts := httpstream.Options{
		MaxMessageSize: s.cfg.MaxMessageSize,
		SessionTimeout: 2 * s.cfg.PingInterval.D(),
		WriteTimeout:   s.cfg.WriteTimeout.D(),
		ReplayBytes:    s.cfg.QueueBytes,
		Origins:        s.Origins(),
		Logger:         s.log,
	}
	if s.cfg.ClusterMode() && s.cfg.TokenSecret != "" {
		opts.Advertise = s.cfg.Advertise
		opts.RouteKey = routeKey(s.cfg.TokenSecret)
	}
	h := httpstream.New(s.node, opts)
	h.Mount(s.mux.Handle)
	s.drains = append(s.drains, h.Drain)
	s.OnShutdown(h.Close)
	if opts.RouteKey != nil && opts.Advertise == "" {
		s.onListen = append(s.onListen, func(a net.Addr) {
			if ta, ok := a.(*net.TCPAddr); ok && !ta.IP.IsUnspecified() {
				h.SetAdvertise(ta.String())
				return
			}
			s.log.Warn("cluster mode: listening on every address, so other nodes cannot pass HTTP fallback requests here; set --advertise host:port (or route fallback sessions stickily)", "addr", a.String())
		})
	}
}

// routeKey derives the key that signs node addresses in HTTP session ids
// from the token secret every node of a cluster shares.
func routeKey(tokenSecret string) []byte {
	m := hmac.New(sha256.New, []byte(tokenSecret))
	m.Write([]byte("sori fallback session routes"))
	return m.Sum(nil)
}
