package server

import "github.com/sori-dev/sori/internal/clock"

// Option adjusts what New builds beyond the configuration file: things a
// test needs to control, never settings an operator sets.
type Option func(*options)

type options struct {
	clock clock.Clock
}

// WithClock makes the session layer (connect timeout, heartbeats, token
// expiry, command budgets) run on c, so that tests drive time instead of
// sleeping. Token signatures and HTTP deadlines keep the system clock.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }
