package server

import "github.com/sori-dev/sori/internal/transport/httpstream"

// mountFallback serves the transports for clients without WebSocket: SSE +
// POST and long polling (see docs/transports.md). Their sessions share the
// node, limits and protocol with /ws.
func (s *Server) mountFallback() {
	h := httpstream.New(s.node, httpstream.Options{
		MaxMessageSize: s.cfg.MaxMessageSize,
		SessionTimeout: 2 * s.cfg.PingInterval.D(),
		WriteTimeout:   s.cfg.WriteTimeout.D(),
		ReplayBytes:    s.cfg.QueueBytes,
		Origins:        s.Origins(),
		Logger:         s.log,
	})
	h.Mount(s.mux.Handle)
	s.drains = append(s.drains, h.Drain)
	s.OnShutdown(h.Close)
}
