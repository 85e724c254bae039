package server

import (
	"net/http"

	"github.com/sori-dev/sori/internal/clock"
)

// Option adjusts what New builds beyond the configuration file: things a
// test needs to control, never settings an operator sets.
type Option func(*options)

type options struct {
	clock         clock.Clock
	pushHTTP      *http.Client
	pushAllowHTTP bool
}

// WithPushClient makes Web Push requests go through c and accept plain
// http:// endpoints on IP addresses and any port (the hosts allowed are
// still --push-hosts): tests run a local push service.
func WithPushClient(c *http.Client) Option {
	return func(o *options) { o.pushHTTP, o.pushAllowHTTP = c, true }
}

// WithClock makes the session layer (connect timeout, heartbeats, token
// expiry, command budgets) run on c, so that tests drive time instead of
// sleeping. Token signatures and HTTP deadlines keep the system clock.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }
