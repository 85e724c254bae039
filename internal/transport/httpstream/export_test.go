package httpstream

import (
	"encoding/base64"
	"strings"
	"time"
)

// Sweep runs one pass of the sweeper as if the time were now, so that tests
// can expire lingering sessions without waiting.
func (h *Handler) Sweep(now time.Time) { h.sweepOnce(now) }

// Attachments counts the downstream requests (SSE streams and polls) that
// have attached to session sid ("<id>.<secret>"), so that tests can wait for
// a request to be attached instead of sleeping.
func (h *Handler) Attachments(sid string) uint64 {
	id, _, _ := strings.Cut(sid, ".")
	h.mu.Lock()
	c := h.conns[id]
	h.mu.Unlock()
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// RouteTag returns the tag this handler would write into a session id of
// a node at addr, so that tests can name a holder that does not exist.
func (h *Handler) RouteTag(addr string) string {
	return routeSep + base64.RawURLEncoding.EncodeToString([]byte(addr)) + routeSep + h.mac(addr)
}

// SetParkHooks makes the handler call parked when a request has been
// parked (its first pass done, its handler returning) and ended when a
// parked request ends, so that tests wait on these events. Call it before
// any request.
func (h *Handler) SetParkHooks(parked, ended func()) {
	h.hooks.parked, h.hooks.ended = parked, ended
}
