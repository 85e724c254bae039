package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sori-dev/sori/internal/auth"
	"github.com/sori-dev/sori/internal/clock"
	"github.com/sori-dev/sori/internal/hub"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/ratelimit"
)

// Config holds the per-connection limits and behaviour of a Node. Zero values
// take the defaults listed with each field.
type Config struct {
	MaxConnections       int           // total; default 100000
	MaxConnectionsPerIP  int           // default 1000
	MaxSubscriptions     int           // per connection; default 256
	MaxUserSubscriptions int           // per user, across all their connections; default 1024
	MaxUserConnections   int           // per user; default 32
	MaxMessageSize       int           // bytes per inbound frame; default 64 KiB
	QueueBytes           int           // outbound queue cap per connection; default 1 MiB
	CommandRate          float64       // commands per second per user (all their connections; anonymous: per connection); default 100
	CommandBurst         int           // default 200
	CommandTimeout       time.Duration // per command (store calls); default 10s
	ConnectTimeout       time.Duration // from transport open to the connect command; default 10s
	PingInterval         time.Duration // server heartbeats; default 25s
	AllowAnonymous       bool          // connect without a token
	Version              string        // reported in the connect reply
	Clock                clock.Clock   // timers and time; nil = the system clock (tests pass a fake)
}

func (c *Config) setDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxConnections, 100000)
	def(&c.MaxConnectionsPerIP, 1000)
	def(&c.MaxSubscriptions, 256)
	def(&c.MaxUserSubscriptions, 1024)
	def(&c.MaxUserConnections, 32)
	def(&c.MaxMessageSize, 64<<10)
	def(&c.QueueBytes, 1<<20)
	def(&c.CommandBurst, 200)
	if c.CommandRate <= 0 {
		c.CommandRate = 100
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = 10 * time.Second
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 25 * time.Second
	}
	if c.Clock == nil {
		c.Clock = clock.Real()
	}
}

// UserKey is the canonical form of a user id: lower case, as accounts are
// unique ignoring case (usernames are ASCII). The node indexes sessions,
// budgets and bounds by it, so that "Carol" and "carol" are one user.
func UserKey(user string) string { return strings.ToLower(user) }

// Metrics receives a node's counts; see package metrics for the Prometheus
// implementation. Implementations must be safe for concurrent use and cheap.
type Metrics interface {
	ConnectionsChanged(transport string, delta int)
	Received(transport string, bytes int)
	Wrote(transport string, frames, bytes int)
	DeliveryLatency(d time.Duration)
	Command(op string)
	CommandError(code int)
	SlowConsumer()
	Disconnected(code int)
}

// Authorizer decides subscribe and publish rights for a namespace instead of
// its static rule (the chat service uses it for room membership). Returned
// errors should be *protocol.Error.
type Authorizer interface {
	CanSubscribe(ctx context.Context, user, channel string) error
	CanPublish(ctx context.Context, user, channel string) error
}

// Node holds every session of one server. It is safe for concurrent use.
//
// Lock order: Node.mu, then Session.mu; never call into the hub with Node.mu
// held. userMu (per-user subscription counts) is a leaf. See docs/locks.md.
type Node struct {
	cfg      Config
	clock    clock.Clock
	hub      *hub.Hub
	verifier *auth.Verifier
	metrics  Metrics
	log      *slog.Logger
	prefix   string
	seq      atomic.Uint64
	// cmds holds the *[]Command slices frames are decoded into (see
	// Session.HandleWith): one per session would stay with every idle
	// connection (a decoded Command is about 170 bytes).
	cmds sync.Pool
	// batches lends sessions' queues their frame slices while they are
	// busy (queue.go).
	batches batches
	// deadlines ends sessions at their connect timeout or token expiry,
	// from one timer (deadline.go).
	deadlines deadlines
	// commands is the per-user command budget (keyed by UserKey): shared by
	// a user's connections and kept across reconnects, so that reconnecting
	// does not refill it. Its table is bounded (ratelimit.DefaultMaxKeys).
	commands *ratelimit.Limiter

	userMu   sync.Mutex
	userSubs map[string]int // live subscriptions per UserKey, across connections

	authMu      sync.RWMutex
	authorizers map[string]Authorizer
	rpcs        map[string]RPCHandler
	onClosed    []func(*Session)

	mu       sync.Mutex
	sessions map[*Session]struct{}
	// byUser holds each user's sessions by UserKey: a slice, not a set,
	// since a user has at most MaxUserConnections (most have one, and a Go
	// map of one entry is ~200 bytes per connected user).
	byUser   map[string][]*Session
	perIP    map[string]int
	draining bool
	empty    chan struct{} // closed when draining and the last session leaves

	hbMu      sync.Mutex // serializes heartbeat ticks with Close
	hbTimer   clock.Timer
	hbTick    uint64
	hbStopped bool
}

// NewNode returns a node. verifier may be nil when only anonymous connections
// are allowed. Close stops its heartbeat loop and deadline timer.
func NewNode(cfg Config, h *hub.Hub, verifier *auth.Verifier, m Metrics, log *slog.Logger) *Node {
	cfg.setDefaults()
	if m == nil {
		m = nopMetrics{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var p [3]byte
	_, _ = rand.Read(p[:])
	n := &Node{
		cfg: cfg, clock: cfg.Clock, hub: h, verifier: verifier, metrics: m, log: log,
		prefix:      base64.RawURLEncoding.EncodeToString(p[:]),
		commands:    ratelimit.New(ratelimit.Config{Rate: cfg.CommandRate, Burst: cfg.CommandBurst, Now: cfg.Clock.Now}),
		userSubs:    map[string]int{},
		authorizers: map[string]Authorizer{},
		rpcs:        map[string]RPCHandler{},
		sessions:    map[*Session]struct{}{},
		byUser:      map[string][]*Session{},
		perIP:       map[string]int{},
	}
	n.deadlines.clock = n.clock
	n.hbMu.Lock()
	n.armHeartbeatLocked()
	n.hbMu.Unlock()
	return n
}

// Clock returns the node's time source; transports use it for protocol
// timeouts so that tests can drive them.
func (n *Node) Clock() clock.Clock { return n.clock }

// Config returns the node's effective configuration.
func (n *Node) Config() Config { return n.cfg }

// Hub returns the node's hub.
func (n *Node) Hub() *hub.Hub { return n.hub }

// SetAuthorizer installs a for a namespace.
func (n *Node) SetAuthorizer(namespace string, a Authorizer) {
	n.authMu.Lock()
	n.authorizers[namespace] = a
	n.authMu.Unlock()
}

// RPCHandler serves one rpc method for connected sessions. data is the
// command's raw JSON data (may be empty). The result is JSON-encoded into the
// reply; an error should be a *protocol.Error (others become ErrInternal).
type RPCHandler func(ctx context.Context, s *Session, data json.RawMessage) (any, error)

// HandleRPC registers h for method. Register before serving.
func (n *Node) HandleRPC(method string, h RPCHandler) {
	n.authMu.Lock()
	n.rpcs[method] = h
	n.authMu.Unlock()
}

// OnClosed registers f to run once for every session whose connection is
// gone, after it left its channels and the node (calls use it to drop the
// connection's participants). Register before serving; f must not block.
func (n *Node) OnClosed(f func(*Session)) {
	n.authMu.Lock()
	n.onClosed = append(n.onClosed, f)
	n.authMu.Unlock()
}

func (n *Node) closedHooks() []func(*Session) {
	n.authMu.RLock()
	defer n.authMu.RUnlock()
	return n.onClosed
}

// Authorizer returns the Authorizer installed for namespace, or nil.
func (n *Node) Authorizer(namespace string) Authorizer { return n.authorizer(namespace) }

func (n *Node) rpc(method string) RPCHandler {
	n.authMu.RLock()
	defer n.authMu.RUnlock()
	return n.rpcs[method]
}

func (n *Node) authorizer(ns string) Authorizer {
	n.authMu.RLock()
	defer n.authMu.RUnlock()
	return n.authorizers[ns]
}

// verifyToken checks a connection token. The verifier tolerates a few
// seconds of clock skew on every time claim; an already expired token is
// refused here anyway, since the session would close it at once (4003).
func (n *Node) verifyToken(tok string) (*auth.Claims, error) {
	if n.verifier == nil {
		return nil, auth.ErrTokenInvalid
	}
	c, err := n.verifier.Verify(tok)
	if err != nil {
		return nil, err
	}
	if exp := c.ExpiresAt(); !exp.IsZero() && !n.clock.Now().Before(exp) {
		return nil, fmt.Errorf("%w: expired at %s", auth.ErrTokenExpired, exp.UTC().Format(time.RFC3339))
	}
	return c, nil
}

func (n *Node) maxDataSize(ns *hub.Namespace) int {
	if ns.MaxMessageSize > 0 {
		return ns.MaxMessageSize
	}
	return n.cfg.MaxMessageSize
}

// Attacher is implemented by transports that keep a reference to their
// session. Accept calls Attach once, before the session becomes visible to
// other goroutines (heartbeats, Shutdown, DisconnectUser), so that the
// transport never sees a call before it knows its session. Attach must only
// store s; it runs with the node's lock held.
type Attacher interface {
	Attach(s *Session)
}

// Accept registers a new connection from ip on transport t. When the node
// refuses it (shutting down, a connection limit), it returns a nil session
// and the Disconnect the transport should close with instead.
func (n *Node) Accept(t Transport, ip string) (*Session, protocol.Disconnect) {
	n.mu.Lock()
	defer n.mu.Unlock()
	refuse := func(d protocol.Disconnect) (*Session, protocol.Disconnect) { return nil, d }
	if n.draining {
		return refuse(protocol.DisconnectShutdown)
	}
	if len(n.sessions) >= n.cfg.MaxConnections {
		return refuse(protocol.DisconnectConnLimit.WithReason("server connection limit reached"))
	}
	if n.perIP[ip] >= n.cfg.MaxConnectionsPerIP {
		return refuse(protocol.DisconnectConnLimit.WithReason("per-IP connection limit reached"))
	}
	seq := n.seq.Add(1)
	s := &Session{node: n, t: t, ip: ip, seq: seq, id: n.prefix + strconv.FormatUint(seq, 36)}
	s.q.max = int32(min(n.cfg.QueueBytes, math.MaxInt32))
	if a, ok := t.(Attacher); ok {
		a.Attach(s) // before the session is visible to heartbeats and Shutdown
	}
	n.sessions[s] = struct{}{}
	n.perIP[ip]++
	n.deadlines.set(s, n.clock.Now().Add(n.cfg.ConnectTimeout), deadlineConnect)
	n.metrics.ConnectionsChanged(t.Kind(), 1)
	return s, protocol.Disconnect{}
}

// bindUser indexes s under its user once it connected. It reports false,
// binding nothing, when the user already has MaxUserConnections sessions.
func (n *Node) bindUser(s *Session) bool {
	key := s.userKey()
	if key == "" {
		return true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, live := n.sessions[s]; !live {
		return true // closed meanwhile: nothing to index
	}
	set := n.byUser[key]
	if len(set) >= n.cfg.MaxUserConnections {
		return false
	}
	n.byUser[key] = append(set, s)
	return true
}

// reserveSub counts one more subscription of the user key; false when the
// user is at MaxUserSubscriptions. Anonymous sessions (key "") are bounded
// per connection only.
func (n *Node) reserveSub(key string) bool {
	if key == "" {
		return true
	}
	n.userMu.Lock()
	defer n.userMu.Unlock()
	if n.userSubs[key] >= n.cfg.MaxUserSubscriptions {
		return false
	}
	n.userSubs[key]++
	return true
}

// releaseSubs gives back k subscriptions of the user key.
func (n *Node) releaseSubs(key string, k int) {
	if key == "" || k == 0 {
		return
	}
	n.userMu.Lock()
	defer n.userMu.Unlock()
	if n.userSubs[key] -= k; n.userSubs[key] <= 0 {
		delete(n.userSubs, key)
	}
}

// UserSubscriptions returns how many subscriptions user holds across their
// connections.
func (n *Node) UserSubscriptions(user string) int {
	n.userMu.Lock()
	defer n.userMu.Unlock()
	return n.userSubs[UserKey(user)]
}

func (n *Node) remove(s *Session, d protocol.Disconnect) {
	n.mu.Lock()
	if _, ok := n.sessions[s]; !ok {
		n.mu.Unlock()
		return
	}
	delete(n.sessions, s)
	if n.perIP[s.ip]--; n.perIP[s.ip] <= 0 {
		delete(n.perIP, s.ip)
	}
	if key := s.userKey(); key != "" {
		if set := n.byUser[key]; set != nil {
			if set = slices.DeleteFunc(set, func(x *Session) bool { return x == s }); len(set) == 0 {
				delete(n.byUser, key)
			} else {
				n.byUser[key] = set
			}
		}
	}
	if n.draining && len(n.sessions) == 0 && n.empty != nil {
		close(n.empty)
		n.empty = nil
	}
	n.mu.Unlock()
	n.metrics.ConnectionsChanged(s.t.Kind(), -1)
	n.metrics.Disconnected(d.Code)
}

// Count returns the number of live sessions.
func (n *Node) Count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.sessions)
}

// UserSessions returns the live sessions of a user, matching the id in any
// case (see UserKey).
func (n *Node) UserSessions(user string) []*Session {
	key := UserKey(user)
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.byUser[key])
}

// DisconnectUser closes every connection of user with d and returns how many.
func (n *Node) DisconnectUser(user string, d protocol.Disconnect) int {
	ss := n.UserSessions(user)
	for _, s := range ss {
		s.Disconnect(d)
	}
	return len(ss)
}

func (n *Node) snapshot() []*Session {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*Session, 0, len(n.sessions))
	for s := range n.sessions {
		out = append(out, s)
	}
	return out
}

// heartbeatSlices spreads the pings of one PingInterval over this many
// ticks, so that 100k connections don't wake at once.
const heartbeatSlices = 10

// armHeartbeatLocked schedules the next heartbeat tick. hbMu is held.
func (n *Node) armHeartbeatLocked() {
	n.hbTimer = n.clock.AfterFunc(n.cfg.PingInterval/heartbeatSlices, n.heartbeat)
}

// heartbeat asks the transports of one slice of the sessions to ping, so that
// each is pinged once per PingInterval, and arms the next tick.
func (n *Node) heartbeat() {
	n.hbMu.Lock()
	defer n.hbMu.Unlock()
	if n.hbStopped {
		return
	}
	tick := n.hbTick
	n.hbTick++
	for _, s := range n.snapshot() {
		if s.seq%heartbeatSlices == tick%heartbeatSlices {
			s.t.Ping()
		}
	}
	n.armHeartbeatLocked()
}

// Shutdown stops accepting sessions, disconnects every session with d (1001,
// reconnect) and waits until they are gone or ctx ends, then stops the
// heartbeat loop.
func (n *Node) Shutdown(ctx context.Context, d protocol.Disconnect) error {
	n.mu.Lock()
	n.draining = true
	var empty chan struct{}
	if len(n.sessions) > 0 {
		empty = make(chan struct{})
		n.empty = empty
	}
	n.mu.Unlock()
	for _, s := range n.snapshot() {
		s.Disconnect(d)
	}
	var err error
	if empty != nil {
		select {
		case <-empty:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	n.Close()
	return err
}

// Close stops the heartbeats and the sessions' deadlines (connect timeout,
// token expiry); it does not close sessions. It is safe to call more than
// once, also concurrently; once it returned no heartbeat runs.
func (n *Node) Close() {
	n.deadlines.stop()
	n.hbMu.Lock()
	defer n.hbMu.Unlock()
	if !n.hbStopped {
		n.hbStopped = true
		n.hbTimer.Stop()
	}
}

type nopMetrics struct{}

func (nopMetrics) ConnectionsChanged(string, int) {}
func (nopMetrics) Received(string, int)           {}
func (nopMetrics) Wrote(string, int, int)         {}
func (nopMetrics) DeliveryLatency(time.Duration)  {}
func (nopMetrics) Command(string)                 {}
func (nopMetrics) CommandError(int)               {}
func (nopMetrics) SlowConsumer()                  {}
func (nopMetrics) Disconnected(int)               {}
