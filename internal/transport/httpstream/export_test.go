package httpstream

import "time"

// Sweep runs one pass of the sweeper as if the time were now, so that tests
// can expire lingering sessions without waiting.
func (h *Handler) Sweep(now time.Time) { h.sweepOnce(now) }
