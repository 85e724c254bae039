package session

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sori-dev/sori/internal/auth"
	"github.com/sori-dev/sori/internal/hub"
	"github.com/sori-dev/sori/internal/protocol"
)

// Transport is how a session reaches its client. Implementations: WebSocket,
// SSE + POST, long polling.
type Transport interface {
	// Kind names the transport for metrics and logs ("websocket", "sse", …).
	Kind() string
	// Wake tells the transport that frames wait in the session's queue; it
	// drains them with Session.Drain. It must not block.
	Wake()
	// Ping asks the transport to send a heartbeat, if it has its own.
	Ping()
	// Close ends the connection with a reason, after writing what is queued
	// (within the transport's write deadline). It must not block and must be
	// safe to call more than once; the transport calls Session.Closed when the
	// connection is gone.
	Close(d protocol.Disconnect)
}

// Session is one client connection speaking protocol v1.
//
// Handle is called by the transport's single reader; Deliver by any goroutine;
// Drain by the transport's single writer. Everything else is internal.
type Session struct {
	node *Node
	t    Transport
	id   string
	seq  uint64 // spreads heartbeats
	ip   string
	q    queue

	// Only the reader goroutine (Handle) touches these, so they need no lock.
	tokens   float64 // command bucket of an anonymous connection (users share the node's)
	lastFill int64   // unix nanos of the bucket's last fill; 0: never
	// strikes counts consecutive rate-limited commands; int32 and next to
	// mu so that the two pack (Session's size class, per idle connection).
	strikes int32
	// dl is the session's place in its node's deadlines heap, plus one (0:
	// none); deadlines.mu guards it.
	dl int32

	mu        sync.Mutex // guards the fields below
	connected bool
	closed    bool
	// revoked counts server-side unsubscribes (kicks). A subscribe that
	// decided before one and registers after it must decide again: see
	// subscribe. uint32 next to the two bools, so that Session fits the
	// 256-byte size class (per idle connection).
	revoked uint32
	user    string // as the token names it (shown to others)
	key     string // UserKey(user): how the node indexes and bounds the user
	grant   *grant // what is kept of the current token; nil before connect or when anonymous
	// subs is every channel the session is subscribed to in the hub. An
	// entry is added under the channel's lock by the subscribe's Admit (so
	// the hub registration and this entry appear together) and removed
	// before the hub registration goes. The reader (subscribe, unsubscribe),
	// server-side Unsubscribe (any goroutine) and Closed all change it.
	subs chanSet
}

// Command aliases the protocol's command for brevity inside the package.
type Command = protocol.Command

// ID returns the connection id.
func (s *Session) ID() string { return s.id }

// User returns the authenticated user id ("" before connect or when anonymous).
func (s *Session) User() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.user
}

// Claims returns the claims of the connection's current token (nil before
// connect or when anonymous); refresh replaces them. They are rebuilt from
// what the session kept (see grant): subject, iat, exp, the channel grants
// and the credentials generation.
func (s *Session) Claims() *auth.Claims {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.grant == nil {
		return nil
	}
	return s.grant.claims(s.user)
}

// grant is what a session keeps of its verified token for the life of the
// connection. A *auth.Claims with its parsed registered claims is about
// 220 bytes per connection (the struct, two dates, strings); this is 80,
// and an idle connection's memory is mostly such things (issue 15).
type grant struct {
	channels, publish []string // as auth.Claims: CanSubscribe, CanPublish
	gen               *int64   // as auth.Claims.Gen
	issued, expires   int64    // unix nanoseconds; 0: the token has none
}

func keep(c *auth.Claims) *grant {
	g := &grant{channels: c.Channels, publish: c.Publish, gen: c.Gen}
	if t := c.Issued(); !t.IsZero() {
		g.issued = t.UnixNano()
	}
	if t := c.ExpiresAt(); !t.IsZero() {
		g.expires = t.UnixNano()
	}
	return g
}

func (g *grant) expiresAt() time.Time {
	if g.expires == 0 {
		return time.Time{}
	}
	return time.Unix(0, g.expires)
}

func (g *grant) canSubscribe(ch string) bool {
	return (&auth.Claims{Channels: g.channels}).CanSubscribe(ch)
}

func (g *grant) canPublish(ch string) bool {
	return (&auth.Claims{Publish: g.publish}).CanPublish(ch)
}

// claims rebuilds the token's claims for user.
func (g *grant) claims(user string) *auth.Claims {
	c := &auth.Claims{Channels: g.channels, Publish: g.publish, Gen: g.gen}
	c.Subject = user
	if g.issued != 0 {
		c.IssuedAt = jwt.NewNumericDate(time.Unix(0, g.issued))
	}
	if g.expires != 0 {
		c.RegisteredClaims.ExpiresAt = jwt.NewNumericDate(time.Unix(0, g.expires))
	}
	return c
}

// Info implements hub.Subscriber.
func (s *Session) Info() protocol.ClientInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return protocol.ClientInfo{User: s.user, Client: s.id}
}

// Deliver implements hub.Subscriber: it enqueues a frame and, when the
// connection cannot keep up, disconnects it asynchronously.
func (s *Session) Deliver(frame []byte, conflateKey string, publishedAt int64) {
	s.enqueue(Frame{Data: frame, PublishedAt: publishedAt, key: conflateKey})
}

// errResync is the disconnect of Resync; the reason fits a WebSocket close
// frame.
var errResync = protocol.DisconnectForceReconnect.WithReason("this node missed publications it cannot read back: reconnect and recover")

// Resync implements hub.Resyncer: this node can no longer deliver channel
// in order, so the connection ends with "reconnect" and the client resumes
// its subscriptions by (epoch, offset), on any node.
func (s *Session) Resync(channel string) {
	s.node.log.Info("channel position lost on this node: the client reconnects and recovers", "conn", s.id, "channel", channel)
	s.t.Close(errResync)
}

func (s *Session) enqueue(f Frame) {
	ok, wasEmpty := s.q.push(f, &s.node.batches)
	if !ok {
		s.node.metrics.SlowConsumer()
		s.q.disable()
		s.t.Close(protocol.DisconnectSlowConsumer)
		return
	}
	if wasEmpty {
		s.t.Wake()
	}
}

// Send enqueues an encoded frame for the client (a reply or a push).
func (s *Session) Send(frame []byte) { s.enqueue(Frame{Data: frame}) }

// SendControl enqueues a transport control frame such as a WebSocket pong.
func (s *Session) SendControl(op byte, payload []byte) { s.enqueue(Frame{Data: payload, Control: op}) }

// Drain returns every queued frame, oldest first. Only the transport's writer
// calls it; the slice is valid until its next call.
func (s *Session) Drain() []Frame { return s.q.drain() }

// Idle tells the session its writer found the queue empty, so buffers can go.
func (s *Session) Idle() { s.q.release(&s.node.batches) }

// Pending reports whether frames are queued.
func (s *Session) Pending() bool { return s.q.len() > 0 }

// Wrote records a completed write of frames for metrics.
func (s *Session) Wrote(frames, bytes int, oldestPublishedAt int64) {
	s.node.metrics.Wrote(s.t.Kind(), frames, bytes)
	if oldestPublishedAt != 0 {
		s.node.metrics.DeliveryLatency(time.Duration(time.Now().UnixNano() - oldestPublishedAt))
	}
}

// Disconnect closes the connection with a reason (server-initiated).
func (s *Session) Disconnect(d protocol.Disconnect) { s.t.Close(d) }

// Handle processes one inbound frame: one command, or several separated by
// newlines. When the connection must close it returns the Disconnect to close
// with and true.
func (s *Session) Handle(frame []byte) (protocol.Disconnect, bool) {
	return s.HandleWith(frame, protocol.DecodeCommands)
}

// HandleWith is Handle for a frame in another codec: decode parses it
// (protocol.DecodeCommandsMsgpack for the binary codec). Replies and pushes
// are still queued as JSON; the transport converts them.
func (s *Session) HandleWith(frame []byte, decode func([]byte, []protocol.Command) ([]protocol.Command, *protocol.BadCommand)) (protocol.Disconnect, bool) {
	s.node.metrics.Received(s.t.Kind(), len(frame))
	if len(frame) > s.node.cfg.MaxMessageSize {
		s.Send(protocol.EncodeError(0, protocol.ErrMessageTooLarge))
		return disconnect(protocol.DisconnectTooBig)
	}
	bp := s.node.getCmds()
	cmds, bad := decode(frame, (*bp)[:0])
	for i := range cmds {
		if d, end := s.handleCommand(&cmds[i]); end {
			s.node.putCmds(bp, cmds)
			return d, true
		}
	}
	s.node.putCmds(bp, cmds)
	if bad != nil {
		s.node.metrics.CommandError(bad.Err.Code)
		s.Send(protocol.EncodeError(bad.ID, bad.Err))
		if !s.isConnected() {
			// Nothing but a valid connect is acceptable first.
			return disconnect(protocol.DisconnectBadRequest)
		}
	}
	return carryOn()
}

// getCmds and putCmds lend the slice a frame is decoded into (Node.cmds).
func (n *Node) getCmds() *[]Command {
	if bp, ok := n.cmds.Get().(*[]Command); ok {
		return bp
	}
	return new([]Command)
}

func (n *Node) putCmds(bp *[]Command, cmds []Command) {
	clear(cmds) // let the strings and data go
	if cap(cmds) > 64 {
		return // a huge batch: do not keep its slice
	}
	*bp = cmds[:0]
	n.cmds.Put(bp)
}

// disconnect is the answer of a command that ends the connection with d.
func disconnect(d protocol.Disconnect) (protocol.Disconnect, bool) { return d, true }

// carryOn is the answer of a command after which the connection stays.
func carryOn() (protocol.Disconnect, bool) { return protocol.Disconnect{}, false }

func (s *Session) isConnected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connected
}

func (s *Session) userKey() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.key
}

// owner is who the hub charges for channels this session creates: the user,
// or for an anonymous connection its address.
func (s *Session) owner() string {
	if key := s.userKey(); key != "" {
		return key
	}
	return "ip " + s.ip
}

// allow takes one token from the command budget: the user's, shared by all
// their connections and not refilled by reconnecting; an anonymous (or not
// yet connected) connection has its own.
func (s *Session) allow() bool {
	if key := s.userKey(); key != "" {
		_, ok := s.node.commands.Allow(key)
		return ok
	}
	cfg := &s.node.cfg
	now := s.node.clock.Now()
	if s.lastFill == 0 {
		s.tokens = float64(cfg.CommandBurst)
	} else {
		s.tokens += max(time.Duration(now.UnixNano()-s.lastFill), 0).Seconds() * cfg.CommandRate
		if s.tokens > float64(cfg.CommandBurst) {
			s.tokens = float64(cfg.CommandBurst)
		}
	}
	s.lastFill = now.UnixNano()
	if s.tokens < 1 {
		return false
	}
	s.tokens--
	return true
}

func (s *Session) handleCommand(cmd *Command) (protocol.Disconnect, bool) {
	if !s.allow() {
		s.strikes++
		s.node.metrics.CommandError(protocol.ErrRateLimited.Code)
		s.Send(protocol.EncodeError(cmd.ID, protocol.ErrRateLimited))
		if int(s.strikes) > s.node.cfg.CommandBurst {
			return disconnect(protocol.DisconnectRateLimit)
		}
		return carryOn()
	}
	s.strikes = 0
	s.node.metrics.Command(cmd.Op)
	if cmd.Op == protocol.OpConnect {
		return s.connect(cmd)
	}
	if !s.isConnected() {
		s.Send(protocol.EncodeError(cmd.ID, protocol.ErrNotConnected))
		return disconnect(protocol.DisconnectBadRequest)
	}
	var (
		result any
		err    error
	)
	ctx, cancel := context.WithTimeout(context.Background(), s.node.cfg.CommandTimeout)
	defer cancel()
	switch cmd.Op {
	case protocol.OpSubscribe:
		// subscribe replies from inside the hub, ahead of new publications.
		err = s.subscribe(ctx, cmd)
		if err == nil {
			return carryOn()
		}
	case protocol.OpUnsubscribe:
		result, err = s.unsubscribe(cmd)
	case protocol.OpPublish:
		result, err = s.publish(ctx, cmd)
	case protocol.OpHistory:
		result, err = s.history(ctx, cmd)
	case protocol.OpPresence:
		result, err = s.presence(ctx, cmd)
	case protocol.OpRefresh:
		result, err = s.refresh(cmd)
		if errors.Is(err, errUserChanged) {
			s.Send(protocol.EncodeError(cmd.ID, protocol.ErrBadToken.WithMessage("refresh token is for another user")))
			return disconnect(protocol.DisconnectUnauthorized)
		}
	case protocol.OpPing:
		result = struct{}{}
	case protocol.OpRPC:
		h := s.node.rpc(cmd.Method)
		if h == nil {
			err = protocol.ErrUnknownMethod.WithMessage("unknown rpc method " + cmd.Method)
			break
		}
		result, err = h(ctx, s, cmd.Data)
	default:
		// Validate refuses unknown ops; an op it knows and this switch does
		// not must not succeed silently.
		err = protocol.ErrUnknownOp.WithMessage("unknown op " + cmd.Op)
	}
	s.reply(cmd.ID, result, err)
	return carryOn()
}

func (s *Session) reply(id uint64, result any, err error) {
	if err == nil {
		if result == nil {
			result = struct{}{}
		}
		s.Send(protocol.EncodeReply(protocol.Reply{ID: id, Result: result}))
		return
	}
	var perr *protocol.Error
	if !errors.As(err, &perr) {
		s.node.log.Error("command failed", "conn", s.id, "err", err)
		perr = protocol.ErrInternal
	}
	s.node.metrics.CommandError(perr.Code)
	s.Send(protocol.EncodeError(id, perr))
}

var errUserChanged = errors.New("session: refresh token names another user")

func (s *Session) connect(cmd *Command) (protocol.Disconnect, bool) {
	s.mu.Lock()
	if s.connected {
		s.mu.Unlock()
		s.Send(protocol.EncodeError(cmd.ID, protocol.ErrAlreadyConnected))
		return carryOn()
	}
	s.mu.Unlock()
	var claims *auth.Claims
	if cmd.Token == "" {
		if !s.node.cfg.AllowAnonymous {
			s.Send(protocol.EncodeError(cmd.ID, protocol.ErrBadToken.WithMessage("a token is required")))
			return disconnect(protocol.DisconnectUnauthorized)
		}
	} else {
		c, err := s.node.verifyToken(cmd.Token)
		if err != nil {
			if errors.Is(err, auth.ErrTokenExpired) {
				s.Send(protocol.EncodeError(cmd.ID, protocol.ErrTokenExpired))
				return disconnect(protocol.DisconnectTokenExpired)
			}
			if errors.Is(err, auth.ErrCheckUnavailable) {
				// The revocation check could not reach the store: the token
				// may be good, so the client is told to come back (1011,
				// reconnect), not that its token is bad.
				s.Send(protocol.EncodeError(cmd.ID, protocol.ErrStoreDown))
				return disconnect(protocol.DisconnectInternal.WithReason("the store is unreachable: reconnect shortly"))
			}
			s.Send(protocol.EncodeError(cmd.ID, protocol.ErrBadToken))
			return disconnect(protocol.DisconnectUnauthorized)
		}
		claims = c
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return carryOn()
	}
	s.connected = true
	if claims != nil {
		s.grant = keep(claims)
		s.user = claims.User()
		s.key = UserKey(s.user) // once, here: every later lookup uses it
	}
	expiresIn := s.armExpiryLocked() // replaces the connect timeout
	s.mu.Unlock()
	if !s.node.bindUser(s) {
		return disconnect(protocol.DisconnectConnLimit.WithReason("per-user connection limit reached"))
	}
	if s.key != "" {
		// The connect counts against the user's budget too, so that
		// reconnecting costs what it did on one connection. It is not
		// refused: the next commands are.
		s.node.commands.Allow(s.key)
	}
	s.Send(protocol.EncodeReply(protocol.Reply{ID: cmd.ID, Result: protocol.ConnectResult{
		Client: s.id, User: s.user, Version: s.node.cfg.Version, ExpiresIn: expiresIn,
		Ping: int64(s.node.cfg.PingInterval / time.Second),
	}}))
	return carryOn()
}

// armExpiryLocked (re)starts the token expiry timer and returns the seconds
// left. Called with s.mu held.
func (s *Session) armExpiryLocked() int64 {
	if s.grant == nil || s.grant.expires == 0 {
		s.node.deadlines.drop(s)
		return 0
	}
	exp := s.grant.expiresAt()
	s.node.deadlines.set(s, exp, deadlineExpiry)
	return int64(exp.Sub(s.node.clock.Now()).Round(time.Second) / time.Second)
}

func (s *Session) refresh(cmd *Command) (any, error) {
	claims, err := s.node.verifyToken(cmd.Token)
	if err != nil {
		if errors.Is(err, auth.ErrTokenExpired) {
			return nil, protocol.ErrTokenExpired
		}
		if errors.Is(err, auth.ErrCheckUnavailable) {
			return nil, protocol.ErrStoreDown
		}
		return nil, protocol.ErrBadToken
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if UserKey(claims.User()) != s.key {
		return nil, errUserChanged
	}
	s.grant = keep(claims)
	return protocol.RefreshResult{ExpiresIn: s.armExpiryLocked()}, nil
}

// namespace returns the channel's options or a protocol error.
func (s *Session) namespace(ch string) (*hub.Namespace, error) {
	ns, err := s.node.hub.NamespaceOf(ch)
	if err != nil {
		return nil, protocol.ErrBadChannel.WithMessage("unknown namespace " + protocol.Namespace(ch))
	}
	return ns, nil
}

// canSubscribe applies the namespace's subscribe rule (or its Authorizer).
func (s *Session) canSubscribe(ctx context.Context, ns *hub.Namespace, ch string) error {
	s.mu.Lock()
	user, key, g := s.user, s.key, s.grant
	s.mu.Unlock()
	if a := s.node.authorizer(ns.Name); a != nil {
		if user == "" {
			return protocol.ErrPermissionDenied
		}
		return a.CanSubscribe(ctx, user, ch)
	}
	if user == "" && !ns.Anonymous {
		return protocol.ErrPermissionDenied.WithMessage("anonymous connections may not subscribe here")
	}
	switch ns.Subscribe {
	case hub.SubscribeToken:
		if g == nil || !g.canSubscribe(ch) {
			return protocol.ErrPermissionDenied.WithMessage("token does not grant this channel")
		}
	case hub.SubscribeUser:
		if key == "" || UserKey(channelOwner(ns.Name, ch)) != key {
			return protocol.ErrPermissionDenied.WithMessage("personal channel of another user")
		}
	}
	return nil
}

// channelOwner returns the user a personal channel belongs to:
// "<ns>:<user>" or "<ns>:<user>#<anything>", or without a namespace (the ""
// namespace) "<user>" or "<user>#<anything>".
func channelOwner(ns, ch string) string {
	owner := ch
	if ns != "" {
		owner = ch[len(ns)+1:]
	}
	if i := strings.IndexByte(owner, '#'); i >= 0 {
		owner = owner[:i]
	}
	return owner
}

// errRevoked aborts a subscribe whose decision a server-side unsubscribe
// (a kick) overtook; errGone one whose connection closed meanwhile.
var (
	errRevoked = errors.New("session: subscription revoked while deciding")
	errGone    = errors.New("session: connection closed")
)

// subscribe decides whether the client may subscribe and registers the
// subscription. The decision (membership, say) and the registration must be
// atomic with respect to a kick, which first changes what the decision reads
// and then calls Unsubscribe: so the registration (the hub's Admit, under the
// channel lock) checks that no Unsubscribe ran since the decision began, and
// decides again if one did. Either the kick's Unsubscribe comes after the
// registration and removes it, or the registration sees the kick and the
// new decision refuses.
func (s *Session) subscribe(ctx context.Context, cmd *Command) error {
	ns, err := s.namespace(cmd.Channel)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		err := s.trySubscribe(ctx, ns, cmd)
		if !errors.Is(err, errRevoked) {
			return err
		}
		if attempt == 3 {
			// Kicked again and again while deciding: let the client retry.
			return protocol.ErrPermissionDenied.WithMessage("membership changed while subscribing; try again")
		}
	}
}

func (s *Session) trySubscribe(ctx context.Context, ns *hub.Namespace, cmd *Command) error {
	s.mu.Lock()
	revoked, key := s.revoked, s.key
	dup := s.subs.has(cmd.Channel)
	n := s.subs.len()
	s.mu.Unlock()
	if dup {
		return protocol.ErrAlreadySubscribed
	}
	if n >= s.node.cfg.MaxSubscriptions {
		return protocol.ErrTooManySubs
	}
	if err := s.canSubscribe(ctx, ns, cmd.Channel); err != nil {
		return err
	}
	if !s.node.reserveSub(key) {
		return protocol.ErrTooManySubs.WithMessage("too many subscriptions across your connections")
	}
	// The closures copy what they need: cmd lives in a pooled slice that
	// is reused once the frame is handled.
	channel, id := cmd.Channel, cmd.ID
	opts := hub.SubscribeOptions{
		Recover: cmd.Recover, Since: hub.Position{Epoch: cmd.Epoch, Offset: cmd.Offset},
		Owner: s.owner(),
		Admit: func() error { // with the channel locked
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.closed {
				return errGone
			}
			if s.revoked != revoked {
				return errRevoked
			}
			s.subs.add(channel)
			return nil
		},
	}
	err := s.node.hub.Subscribe(ctx, channel, s, opts, func(res protocol.SubscribeResult) {
		s.Send(protocol.EncodeReply(protocol.Reply{ID: id, Result: res}))
	})
	if err != nil {
		s.node.releaseSubs(key, 1)
		switch {
		case errors.Is(err, hub.ErrAlreadySubscribed):
			return protocol.ErrAlreadySubscribed
		case errors.Is(err, hub.ErrOwnerLimit):
			return protocol.ErrTooManySubs.WithMessage("too many channels kept alive by your connections")
		case errors.Is(err, errGone):
			return protocol.ErrNotConnected.WithMessage("connection closed")
		}
		return err
	}
	return nil
}

func (s *Session) unsubscribe(cmd *Command) (any, error) {
	s.mu.Lock()
	ok := s.subs.del(cmd.Channel)
	key := s.key
	s.mu.Unlock()
	if !ok {
		return nil, protocol.ErrNotSubscribed
	}
	s.node.hub.Unsubscribe(cmd.Channel, s)
	s.node.releaseSubs(key, 1)
	return struct{}{}, nil
}

// Unsubscribe removes the session from channel on the server's initiative and
// tells the client why. It reports whether the session was subscribed. Call
// it after changing what the subscribe decision reads (membership): a
// subscribe deciding concurrently then either is removed here or decides
// again and sees the change.
func (s *Session) Unsubscribe(channel string, code int, reason string) bool {
	s.mu.Lock()
	s.revoked++
	ok := s.subs.del(channel)
	key := s.key
	s.mu.Unlock()
	if !ok {
		return false
	}
	s.node.hub.Unsubscribe(channel, s)
	s.node.releaseSubs(key, 1)
	s.Send(protocol.EncodeUnsubscribe(channel, code, reason))
	return true
}

func (s *Session) publish(ctx context.Context, cmd *Command) (any, error) {
	ns, err := s.namespace(cmd.Channel)
	if err != nil {
		return nil, err
	}
	if max := s.node.maxDataSize(ns); len(cmd.Data) > max {
		return nil, protocol.ErrMessageTooLarge
	}
	if !json.Valid(cmd.Data) {
		return nil, protocol.ErrBadData
	}
	s.mu.Lock()
	user, g := s.user, s.grant
	subscribed := s.subs.has(cmd.Channel)
	s.mu.Unlock()
	granted := g != nil && g.canPublish(cmd.Channel)
	if a := s.node.authorizer(ns.Name); a != nil && !granted {
		if user == "" {
			return nil, protocol.ErrPermissionDenied
		}
		if err := a.CanPublish(ctx, user, cmd.Channel); err != nil {
			return nil, err
		}
	} else if !granted && (ns.ServerOnlyPublish() || !subscribed) {
		if ns.ServerOnlyPublish() {
			return nil, protocol.ErrPermissionDenied.WithMessage("only the server publishes here")
		}
		return nil, protocol.ErrPermissionDenied.WithMessage("subscribe before publishing")
	}
	pos, err := s.node.hub.PublishAs(ctx, cmd.Channel, cmd.Data, user, s.owner())
	if errors.Is(err, hub.ErrDuplicate) {
		// An idempotent retry: answer as the first publish was answered.
		return protocol.PublishResult{Epoch: pos.Epoch, Offset: pos.Offset, Duplicate: true}, nil
	}
	if errors.Is(err, hub.ErrOwnerLimit) {
		return nil, protocol.ErrRateLimited.WithMessage("too much kept in memory for you (channels or history); wait")
	}
	if err != nil {
		return nil, err
	}
	return protocol.PublishResult{Epoch: pos.Epoch, Offset: pos.Offset}, nil
}

func (s *Session) history(ctx context.Context, cmd *Command) (any, error) {
	ns, err := s.namespace(cmd.Channel)
	if err != nil {
		return nil, err
	}
	if !s.node.hub.KeepsHistory(ns) {
		return nil, protocol.ErrUnavailable.WithMessage("channel keeps no history")
	}
	if err := s.canSubscribe(ctx, ns, cmd.Channel); err != nil {
		return nil, err
	}
	var since *hub.Position
	if cmd.Epoch != "" {
		since = &hub.Position{Epoch: cmd.Epoch, Offset: cmd.Offset}
	}
	// The hub clamps the limit (0 = its maximum), the same for every caller.
	pubs, top, ok, err := s.node.hub.History(ctx, cmd.Channel, cmd.Limit, since)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, protocol.ErrUnavailable.WithMessage("position cannot be recovered; reload")
	}
	if pubs == nil {
		pubs = []protocol.Publication{}
	}
	return protocol.HistoryResult{Epoch: top.Epoch, Offset: top.Offset, Publications: pubs}, nil
}

func (s *Session) presence(ctx context.Context, cmd *Command) (any, error) {
	ns, err := s.namespace(cmd.Channel)
	if err != nil {
		return nil, err
	}
	if !ns.Presence {
		return nil, protocol.ErrUnavailable.WithMessage("channel has no presence")
	}
	if err := s.canSubscribe(ctx, ns, cmd.Channel); err != nil {
		return nil, err
	}
	return protocol.PresenceResult{Clients: s.node.hub.Presence(cmd.Channel)}, nil
}

// Closed tells the session its connection is gone: it leaves every channel
// and the node. The transport calls it once its reader has stopped; further
// calls do nothing.
func (s *Session) Closed(d protocol.Disconnect) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	subs := s.subs
	s.subs = chanSet{}
	key := s.key
	s.node.deadlines.drop(s)
	s.mu.Unlock()
	subs.each(func(ch string) { s.node.hub.Unsubscribe(ch, s) })
	s.node.releaseSubs(key, subs.len())
	s.q.disable()
	s.node.remove(s, d)
	for _, f := range s.node.closedHooks() {
		f(s)
	}
}
