package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sori-dev/sori/internal/auth"
	"github.com/sori-dev/sori/internal/hub"
	"github.com/sori-dev/sori/internal/protocol"
)

// Config holds the per-connection limits and behaviour of a Node. Zero values
// take the defaults listed with each field.
type Config struct {
	MaxConnections      int           // total; default 100000
	MaxConnectionsPerIP int           // default 1000
	MaxSubscriptions    int           // per connection; default 256
	MaxMessageSize      int           // bytes per inbound frame; default 64 KiB
	QueueBytes          int           // outbound queue cap per connection; default 1 MiB
	CommandRate         float64       // commands per second per connection; default 100
	CommandBurst        int           // default 200
	CommandTimeout      time.Duration // per command (store calls); default 10s
	ConnectTimeout      time.Duration // from transport open to the connect command; default 10s
	PingInterval        time.Duration // server heartbeats; default 25s
	AllowAnonymous      bool          // connect without a token
	Version             string        // reported in the connect reply
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
}

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
// Lock order: Node.mu, then Session.mu; never call into the hub with Node.mu held.
type Node struct {
	cfg      Config
	hub      *hub.Hub
	verifier *auth.Verifier
	metrics  Metrics
	log      *slog.Logger
	prefix   string
	seq      atomic.Uint64

	authMu      sync.RWMutex
	authorizers map[string]Authorizer
	rpcs        map[string]RPCHandler
	onClosed    []func(*Session)

	mu       sync.Mutex
	sessions map[*Session]struct{}
	byUser   map[string]map[*Session]struct{}
	perIP    map[string]int
	draining bool
	empty    chan struct{} // closed when draining and the last session leaves

	stop chan struct{}
	done chan struct{}
}

// NewNode returns a node. verifier may be nil when only anonymous connections
// are allowed. Close stops its heartbeat loop.
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
		cfg: cfg, hub: h, verifier: verifier, metrics: m, log: log,
		prefix:      base64.RawURLEncoding.EncodeToString(p[:]),
		authorizers: map[string]Authorizer{},
		rpcs:        map[string]RPCHandler{},
		sessions:    map[*Session]struct{}{},
		byUser:      map[string]map[*Session]struct{}{},
		perIP:       map[string]int{},
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
	}
	go n.heartbeat()
	return n
}

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
	if exp := c.ExpiresAt(); !exp.IsZero() && !time.Now().Before(exp) {
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

// ErrDraining is returned by Accept while the node shuts down.
var ErrDraining = errors.New("session: server is shutting down")

// Accept registers a new connection from ip on transport t. When a limit is
// reached it returns the Disconnect the transport should close with.
func (n *Node) Accept(t Transport, ip string) (*Session, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.draining {
		return nil, protocol.DisconnectShutdown
	}
	if len(n.sessions) >= n.cfg.MaxConnections {
		return nil, protocol.DisconnectConnLimit.WithReason("server connection limit reached")
	}
	if n.perIP[ip] >= n.cfg.MaxConnectionsPerIP {
		return nil, protocol.DisconnectConnLimit.WithReason("per-IP connection limit reached")
	}
	seq := n.seq.Add(1)
	s := &Session{node: n, t: t, ip: ip, seq: seq, id: n.prefix + strconv.FormatUint(seq, 36)}
	s.q.max = n.cfg.QueueBytes
	if a, ok := t.(Attacher); ok {
		a.Attach(s) // before the session is visible to heartbeats and Shutdown
	}
	n.sessions[s] = struct{}{}
	n.perIP[ip]++
	s.connectWait = time.AfterFunc(n.cfg.ConnectTimeout, func() {
		if !s.isConnected() {
			s.Disconnect(protocol.DisconnectConnectTimeout)
		}
	})
	n.metrics.ConnectionsChanged(t.Kind(), 1)
	return s, nil
}

func (n *Node) bindUser(s *Session) {
	user := s.User()
	if user == "" {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, live := n.sessions[s]; !live {
		return
	}
	set := n.byUser[user]
	if set == nil {
		set = map[*Session]struct{}{}
		n.byUser[user] = set
	}
	set[s] = struct{}{}
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
	if user := s.User(); user != "" {
		if set := n.byUser[user]; set != nil {
			delete(set, s)
			if len(set) == 0 {
				delete(n.byUser, user)
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

// UserSessions returns the live sessions of a user.
func (n *Node) UserSessions(user string) []*Session {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*Session, 0, len(n.byUser[user]))
	for s := range n.byUser[user] {
		out = append(out, s)
	}
	return out
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

// heartbeat asks every transport to ping once per PingInterval, spreading the
// pings over the interval so that 100k connections don't wake at once.
func (n *Node) heartbeat() {
	defer close(n.done)
	const slices = 10
	t := time.NewTicker(n.cfg.PingInterval / slices)
	defer t.Stop()
	for tick := uint64(0); ; tick++ {
		select {
		case <-n.stop:
			return
		case <-t.C:
			for _, s := range n.snapshot() {
				if s.seq%slices == tick%slices {
					s.t.Ping()
				}
			}
		}
	}
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

// Close stops the heartbeat loop; it does not close sessions.
func (n *Node) Close() {
	select {
	case <-n.stop:
	default:
		close(n.stop)
	}
	<-n.done
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
