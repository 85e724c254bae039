package hub

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/sori-dev/sori/internal/protocol"
)

// Subscriber is the hub's view of one client connection.
//
// Deliver must not block and must not call back into the hub: it only
// enqueues. The same frame slice goes to every subscriber, so a subscriber
// must never modify it.
type Subscriber interface {
	// Info identifies the connection in presence and join/leave pushes.
	Info() protocol.ClientInfo
	// Deliver enqueues an encoded push frame. conflateKey is non-empty when a
	// newer frame with the same key may replace this one while it is still
	// queued. publishedAt is when the hub accepted the publication (unix nanos),
	// for latency metrics; 0 for frames that are not publications.
	Deliver(frame []byte, conflateKey string, publishedAt int64)
}

// Resyncer is implemented by a Subscriber that can be sent to resume its
// position elsewhere. In cluster mode the hub calls Resync, with the
// channel's lock held (so it must not block or call back into the hub,
// like Deliver), when this node can no longer hand the subscriber the
// channel's publications in order: it missed more than the log retains
// (a node cut off from the bus for a while), or the log was reset. The
// subscriber should end its connection with "reconnect and recover", so
// that the client resumes by (epoch, offset) on any node and learns from
// the subscribe reply what could not be recovered. Left subscribed, it
// would wait forever: this node takes no more publications of the channel
// until a new subscriber loads its position again.
type Resyncer interface {
	Resync(channel string)
}

// Backend keeps the history of a namespace's channels outside of memory (for
// example in the chat store) and assigns their offsets. It obeys the history
// contract in history.go (the in-memory ring obeys the same one), pinned by
// package historytest.
//
// The hub calls Append concurrently, also for one channel, without holding the
// channel's lock, so that a store can commit many publications of one busy
// channel in one transaction; it then delivers them in offset order. For that
// to work a Backend must assign each channel's offsets without gaps: an
// Append that fails must not consume an offset.
//
// Since and Last are called with the channel's lock held (the subscribe reply
// must be queued before any later publication), so they must not call back
// into the hub, and every subscriber and publisher of that channel waits for
// them: keep them to one indexed read.
type Backend interface {
	// Append stores pub as the next publication of channel and returns it with
	// its offset set, and the channel's epoch. It returns only once pub is
	// durable, or with an error and no offset consumed — except when the
	// backend could not learn the outcome (a reply lost with its connection,
	// a deadline that passed while the commit was under way): then pub may
	// be stored all the same, and the hub delivers it as it does another
	// node's, by repairing the hole from the log once a later publication
	// shows it, or when a retry of pub comes back as ErrDuplicate. The hub
	// calls Append with the caller's deadline but without its cancellation
	// (a client that goes away does not cut a commit short); a backend that
	// waits on a network bounds those waits itself too.
	Append(ctx context.Context, channel string, pub protocol.Publication) (protocol.Publication, string, error)
	// Since returns up to limit (> 0) publications after offset, oldest
	// first, and the channel's current epoch and latest offset. ok is false
	// when the position cannot be recovered (another epoch, an offset beyond
	// the top, or history already gone).
	Since(ctx context.Context, channel, epoch string, offset uint64, limit int) (pubs []protocol.Publication, top Position, ok bool, err error)
	// Last returns the newest limit publications, oldest first, and the top.
	// limit 0 returns only the top.
	Last(ctx context.Context, channel string, limit int) ([]protocol.Publication, Position, error)
}

// Position is a place in a channel's stream.
type Position struct {
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
}

// ErrDuplicate is what a Backend's Append returns, together with the
// publication it already holds (its offset set) and the channel's epoch,
// when pub repeats that publication (an idempotent retry). The hub then
// delivers it only if its subscribers have not had it yet (the first Append
// failed after committing), and Publish returns the earlier publication's
// position together with an error wrapping ErrDuplicate.
var ErrDuplicate = errors.New("hub: publication already stored")

// Metrics receives the hub's counts. Implementations must be cheap and safe
// for concurrent use.
type Metrics interface {
	Published(channel string, deliveries int)
	ChannelsChanged(delta int)
	SubscriptionsChanged(delta int)
}

// Config configures a Hub.
type Config struct {
	Namespaces   []Namespace // nil = DefaultNamespaces()
	MaxRecover   int         // most publications sent on recovery; 0 = 1000
	MaxHistory   int         // most publications per History call; 0 = 1000
	Metrics      Metrics     // nil = no metrics
	Now          func() time.Time
	IdleChannels time.Duration // how long an unused channel is kept; 0 = 1 minute

	// Per-owner bounds (an owner is a client's canonical user id; server-side
	// calls have none and are not bounded). They keep one user from growing
	// the server's memory by creating channels or filling history rings.
	MaxOwnerChannels int // channels an owner's subscribes and publishes may create that are still alive; 0 = 1000
	MaxOwnerBytes    int // bytes of data an owner's publications may hold in memory rings; 0 = 16 MiB

	// Cluster mode (broker.go): Broker carries this node's durable
	// publications to the others (nil = one node); RepairAfter is how long
	// a hole in a durable channel waits before it is read from the log
	// (0 = 100 ms).
	Broker      Broker
	RepairAfter time.Duration
	// SyncEvery is how often the position check (check.go) runs in cluster
	// mode (0 = 1 s; negative = never); SyncBatch is how many channels one
	// round checks (0 = 200).
	SyncEvery time.Duration
	SyncBatch int
}

// Hub routes publications to subscribers. It is safe for concurrent use.
//
// Lock order: shard.mu, then channel.mu. Subscriber.Deliver is called with
// channel.mu held and must not take hub locks.
type Hub struct {
	namespaces  map[string]*Namespace
	backends    map[string]Backend
	backendsMu  sync.RWMutex
	maxRecover  int
	maxHistory  int
	owners      owners
	metrics     Metrics
	now         func() time.Time
	idle        time.Duration
	broker      Broker        // nil on a single node
	repairAfter time.Duration // see Config.RepairAfter
	syncEvery   time.Duration // see Config.SyncEvery; 0 = no position check
	syncBatch   int
	checkCursor int // round-robin place of the position check (janitor goroutine only)
	seed        maphash.Seed
	shards      [64]shard

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

type shard struct {
	mu       sync.RWMutex
	channels map[string]*channel
}

type channel struct {
	name string
	ns   *Namespace

	mu       sync.Mutex
	subs     []subscription
	index    map[Subscriber]int
	presence map[string]protocol.ClientInfo // by client id: this node's subscribers
	remote   map[string]remoteMember        // by client id: other nodes' (cluster mode, presence.go)
	history  *ring                          // nil until the first publication of a namespace that keeps history in memory
	owner    string                         // who created the channel, charged for it until it is removed
	epoch    string
	offset   uint64 // the latest offset delivered (or, in memory, assigned)
	lastUsed time.Time
	removed  bool // taken out of its shard; callers must look it up again

	// Durable channels only: publications committed by the backend but not
	// yet delivered because an earlier offset is still on its way.
	known     bool // offset has been learned from the backend
	pending   map[uint64]protocol.Publication
	repairing bool // a repair of the hole before pending is armed (cluster mode)
}

// subscription is one subscriber of a channel. from is the last offset the
// subscriber already has (from its subscribe reply); it receives only later
// publications, so a publication that was both recovered and still on its way
// to delivery is never sent twice.
type subscription struct {
	s    Subscriber
	from uint64
}

// ErrNoNamespace is returned for a channel whose namespace is not configured.
var ErrNoNamespace = errors.New("hub: channel namespace is not configured")

// New returns a hub. Close stops its janitor.
func New(cfg Config) (*Hub, error) {
	h := &Hub{
		namespaces:  map[string]*Namespace{},
		backends:    map[string]Backend{},
		maxRecover:  cfg.MaxRecover,
		maxHistory:  cfg.MaxHistory,
		metrics:     cfg.Metrics,
		now:         cfg.Now,
		idle:        cfg.IdleChannels,
		broker:      cfg.Broker,
		repairAfter: cfg.RepairAfter,
		seed:        maphash.MakeSeed(),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
	}
	if h.maxRecover <= 0 {
		h.maxRecover = 1000
	}
	if h.maxHistory <= 0 {
		h.maxHistory = 1000
	}
	h.owners.init(cfg.MaxOwnerChannels, cfg.MaxOwnerBytes)
	if h.now == nil {
		h.now = time.Now
	}
	if h.idle <= 0 {
		h.idle = time.Minute
	}
	if h.repairAfter <= 0 {
		h.repairAfter = defaultRepairAfter
	}
	if h.broker != nil && cfg.SyncEvery >= 0 {
		h.syncEvery, h.syncBatch = cfg.SyncEvery, cfg.SyncBatch
		if h.syncEvery == 0 {
			h.syncEvery = defaultSyncEvery
		}
		if h.syncBatch <= 0 {
			h.syncBatch = defaultSyncBatch
		}
	}
	if h.metrics == nil {
		h.metrics = nopMetrics{}
	}
	nss := cfg.Namespaces
	if nss == nil {
		nss = DefaultNamespaces()
	}
	for i := range nss {
		ns := nss[i]
		if err := ns.Validate(); err != nil {
			return nil, err
		}
		if _, dup := h.namespaces[ns.Name]; dup {
			return nil, fmt.Errorf("hub: namespace %q configured twice", ns.Name)
		}
		h.namespaces[ns.Name] = &ns
	}
	for i := range h.shards {
		h.shards[i].channels = map[string]*channel{}
	}
	go h.janitor()
	return h, nil
}

// Close stops background work. It does not disconnect subscribers. It is
// safe to call more than once, also concurrently; every call returns once
// the janitor has stopped.
func (h *Hub) Close() {
	h.stopOnce.Do(func() { close(h.stop) })
	<-h.done
}

// SetBackend makes a namespace keep its history in b instead of memory. Call
// it before the namespace's channels are used.
func (h *Hub) SetBackend(namespace string, b Backend) {
	h.backendsMu.Lock()
	h.backends[namespace] = b
	h.backendsMu.Unlock()
}

func (h *Hub) backend(ns string) Backend {
	h.backendsMu.RLock()
	b := h.backends[ns]
	h.backendsMu.RUnlock()
	return b
}

// KeepsHistory reports whether a namespace's channels have history to read
// or recover from.
func (h *Hub) KeepsHistory(ns *Namespace) bool {
	return ns.HistorySize > 0 || h.backend(ns.Name) != nil
}

// NamespaceOf returns the options that apply to a channel.
func (h *Hub) NamespaceOf(ch string) (*Namespace, error) {
	ns, ok := h.namespaces[protocol.Namespace(ch)]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoNamespace, protocol.Namespace(ch))
	}
	return ns, nil
}

func (h *Hub) shardOf(name string) *shard {
	return &h.shards[maphash.String(h.seed, name)%uint64(len(h.shards))]
}

// lockChannel returns the channel locked, creating it for owner if needed
// (an owner over its channel bound gets ErrOwnerLimit).
func (h *Hub) lockChannel(name, owner string) (*channel, error) {
	ns, err := h.NamespaceOf(name)
	if err != nil {
		return nil, err
	}
	s := h.shardOf(name)
	for {
		s.mu.RLock()
		c := s.channels[name]
		s.mu.RUnlock()
		if c == nil {
			s.mu.Lock()
			c = s.channels[name]
			if c == nil {
				if !h.owners.addChannel(owner) {
					s.mu.Unlock()
					return nil, fmt.Errorf("%w: %d live channels", ErrOwnerLimit, h.owners.maxChannels)
				}
				// No history ring yet: most channels never keep a publication
				// (and durable ones never do), so it comes with the first.
				c = &channel{name: name, ns: ns, owner: owner, epoch: newEpoch(), lastUsed: h.now()}
				s.channels[name] = c
				h.metrics.ChannelsChanged(1)
				if pb := h.presenceBroker(); pb != nil && ns.Presence {
					// The other nodes' subscribers, for their leaves when
					// a node dies; joins and leaves from now on come as
					// events (presence.go).
					pb.RequestPresence(name)
				}
			}
			s.mu.Unlock()
		}
		c.mu.Lock()
		if !c.removed {
			return c, nil
		}
		c.mu.Unlock()
	}
}

// lookChannel returns the channel locked, or nil when it does not exist:
// reading a channel must not create one.
func (h *Hub) lookChannel(name string) *channel {
	s := h.shardOf(name)
	s.mu.RLock()
	c := s.channels[name]
	s.mu.RUnlock()
	if c == nil {
		return nil
	}
	c.mu.Lock()
	if c.removed {
		// Removed between the two locks: it was empty, as if it did not exist.
		c.mu.Unlock()
		return nil
	}
	return c
}

// ErrOwnerLimit is returned when an owner reached its bound of live channels
// or of bytes kept in history rings (Config.MaxOwnerChannels, MaxOwnerBytes).
var ErrOwnerLimit = errors.New("hub: per-user limit reached")

// Publish assigns the next offset in channel to data, stores it in history and
// delivers it to every subscriber. It returns the publication's position.
// It is PublishAs without an owner: server-side publications are not bounded.
func (h *Hub) Publish(ctx context.Context, channel string, data []byte, user string) (Position, error) {
	return h.PublishAs(ctx, channel, data, user, "")
}

// PublishAs is Publish on behalf of owner (a client's canonical user id),
// who is charged for the channel if the publication creates it and for the
// bytes its data holds in the channel's in-memory history.
func (h *Hub) PublishAs(ctx context.Context, channel string, data []byte, user, owner string) (Position, error) {
	if _, err := h.NamespaceOf(channel); err != nil {
		return Position{}, err
	}
	now := h.now()
	pub := protocol.Publication{Data: data, User: user, Time: now.UnixMilli()}
	if b := h.backend(protocol.Namespace(channel)); b != nil {
		return h.publishDurable(ctx, b, channel, pub, owner)
	}
	c, err := h.lockChannel(channel, owner)
	if err != nil {
		return Position{}, err
	}
	defer c.mu.Unlock()
	if c.ns.HistorySize > 0 && !h.owners.addBytes(owner, len(data)) {
		return Position{}, fmt.Errorf("%w: %d bytes of history", ErrOwnerLimit, h.owners.maxBytes)
	}
	c.offset++
	pub.Offset = c.offset
	if c.ns.HistorySize > 0 {
		if c.history == nil {
			c.history = newRing(c.ns.HistorySize)
		}
		c.history.add(entry{pub: pub, at: now, owner: owner}, h.owners.release)
	}
	c.lastUsed = now
	h.fanOut(c, &pub)
	if h.broker != nil && c.ns.HistorySize == 0 {
		// No log to share: the other nodes just fan it out (handleFleeting).
		_ = h.broker.Publish(channel, "", pub)
	}
	return Position{Epoch: c.epoch, Offset: pub.Offset}, nil
}

// publishDurable appends through the backend without holding the channel
// lock (so concurrent publishers of one channel share a commit), then hands
// the committed publication to deliverInOrder.
func (h *Hub) publishDurable(ctx context.Context, b Backend, channel string, pub protocol.Publication, owner string) (Position, error) {
	// Once the backend has the publication it must tell us its offset, or the
	// channel's later offsets would wait for it: do not let the caller's
	// cancellation cut that answer off. Its deadline stays: a caller that
	// gave up waiting is answered, and a commit that lands after it leaves a
	// hole that repair fills.
	actx := context.WithoutCancel(ctx)
	if d, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		actx, cancel = context.WithDeadline(actx, d)
		defer cancel()
	}
	stored, epoch, err := b.Append(actx, channel, pub)
	if errors.Is(err, ErrDuplicate) {
		// A retry: its first Append may have failed after committing, so
		// the subscribers may not have it (deliverInOrder drops it if
		// they do).
		if c := h.lookChannel(channel); c != nil {
			if c.known && c.epoch == epoch {
				h.deliverInOrder(c, stored)
				h.repairLater(c)
			}
			c.mu.Unlock()
		}
		return Position{Epoch: epoch, Offset: stored.Offset}, fmt.Errorf("hub: append to %s: %w", channel, err)
	}
	if err != nil {
		return Position{}, fmt.Errorf("hub: append to %s: %w", channel, err)
	}
	if h.broker != nil {
		// Before the local delivery, which may block on this channel's
		// lock; a failure is repaired by the receivers like a loss.
		_ = h.broker.Publish(channel, epoch, stored)
	}
	c, err := h.lockChannel(channel, owner)
	if err != nil {
		return Position{}, err
	}
	defer c.mu.Unlock()
	c.epoch = epoch
	c.lastUsed = h.now()
	h.deliverInOrder(c, stored)
	h.repairLater(c)
	return Position{Epoch: epoch, Offset: stored.Offset}, nil
}

// deliverInOrder fans out pub once every earlier offset of the channel has
// been delivered. Called with c.mu held.
func (h *Hub) deliverInOrder(c *channel, pub protocol.Publication) {
	if !c.known {
		// Nobody has subscribed since this channel was loaded, so nobody is
		// waiting for this publication: a later subscriber learns the
		// channel's position from the backend.
		return
	}
	if pub.Offset <= c.offset {
		return // already covered by a subscriber's recovery read
	}
	if pub.Offset != c.offset+1 {
		if c.pending == nil {
			c.pending = map[uint64]protocol.Publication{}
		}
		c.pending[pub.Offset] = pub
		return
	}
	for {
		c.offset = pub.Offset
		h.fanOut(c, &pub)
		next, ok := c.pending[c.offset+1]
		if !ok {
			return
		}
		delete(c.pending, next.Offset)
		pub = next
	}
}

// fanOut encodes pub once and enqueues the same bytes to every subscriber
// that does not have it yet. Called with c.mu held.
func (h *Hub) fanOut(c *channel, pub *protocol.Publication) {
	if len(c.subs) > 0 {
		frame := protocol.AppendPublication(make([]byte, 0, 64+len(c.name)+len(pub.Data)+len(pub.User)), c.name, pub)
		key := ""
		if c.ns.Conflate {
			key = c.name
		}
		at := h.now().UnixNano()
		for i := range c.subs {
			if sub := &c.subs[i]; pub.Offset > sub.from {
				sub.s.Deliver(frame, key, at)
			}
		}
	}
	h.metrics.Published(c.name, len(c.subs))
}

// SubscribeOptions asks for recovery of what a client missed since a position.
type SubscribeOptions struct {
	Recover bool
	Since   Position
	// Owner is charged for the channel if this subscribe creates it ("" =
	// not bounded; see Config.MaxOwnerChannels).
	Owner string
	// Admit, when set, runs with the channel locked just before the
	// subscriber is added; an error aborts the subscribe. A caller uses it to
	// make its own decision (still a member? connection still open?) atomic
	// with the registration: anything that removes subscribers of this
	// channel after Admit returns finds s registered.
	Admit func() error
}

// ErrAlreadySubscribed is returned when a subscriber subscribes twice.
var ErrAlreadySubscribed = errors.New("hub: already subscribed")

// Subscribe adds s to channel. done runs with the channel locked, after s is
// added and before any later publication reaches s, so that the caller can
// enqueue its reply (with the recovered publications) ahead of new pushes.
func (h *Hub) Subscribe(ctx context.Context, channel string, s Subscriber, opts SubscribeOptions, done func(protocol.SubscribeResult)) error {
	c, err := h.lockChannel(channel, opts.Owner)
	if err != nil {
		return err
	}
	defer c.mu.Unlock()
	if _, dup := c.index[s]; dup {
		return ErrAlreadySubscribed
	}
	res := protocol.SubscribeResult{Recoverable: h.KeepsHistory(c.ns)}
	if err := h.recover(ctx, c, opts, &res); err != nil {
		return err
	}
	if opts.Admit != nil {
		if err := opts.Admit(); err != nil {
			c.lastUsed = h.now()
			return err
		}
	}
	if c.index == nil {
		c.index = map[Subscriber]int{}
	}
	from := res.Offset
	if len(res.Publications) > 0 {
		from = res.Publications[len(res.Publications)-1].Offset
	}
	c.index[s] = len(c.subs)
	c.subs = append(c.subs, subscription{s: s, from: from})
	c.lastUsed = h.now()
	h.metrics.SubscriptionsChanged(1)
	if c.ns.Presence {
		info := s.Info()
		if c.presence == nil {
			c.presence = map[string]protocol.ClientInfo{}
		}
		c.presence[info.Client] = info
		if pb := h.presenceBroker(); pb != nil {
			pb.PublishPresence(channel, true, info)
		}
		if c.ns.JoinLeave {
			frame := protocol.EncodeJoinLeave(protocol.PushJoin, channel, info)
			for _, o := range c.subs {
				if o.s != s {
					o.s.Deliver(frame, "", 0)
				}
			}
		}
	}
	done(res)
	return nil
}

// recover fills res with the channel position and, when asked, what the
// client missed. Called with c.mu held.
func (h *Hub) recover(ctx context.Context, c *channel, opts SubscribeOptions, res *protocol.SubscribeResult) error {
	if b := h.backend(c.ns.Name); b != nil {
		var (
			pubs []protocol.Publication
			top  Position
			ok   bool
			err  error
		)
		if opts.Recover {
			pubs, top, ok, err = b.Since(ctx, c.name, opts.Since.Epoch, opts.Since.Offset, h.maxRecover+1)
		} else {
			_, top, err = b.Last(ctx, c.name, 0)
		}
		if err != nil {
			return fmt.Errorf("hub: position of %s: %w", c.name, err)
		}
		if !c.known || top.Epoch != c.epoch {
			// First subscriber since the channel was loaded (or the backend
			// changed epoch): deliveries continue after the backend's top.
			c.known, c.epoch, c.offset = true, top.Epoch, top.Offset
			clear(c.pending)
		}
		res.Epoch, res.Offset = top.Epoch, top.Offset
		if ok && len(pubs) <= h.maxRecover {
			res.Recovered, res.Publications = true, pubs
		}
		return nil
	}
	if c.history != nil && c.ns.HistoryTTL > 0 {
		c.history.expire(h.now().Add(-c.ns.HistoryTTL), h.owners.release)
	}
	res.Epoch, res.Offset = c.epoch, c.offset
	if !opts.Recover || opts.Since.Epoch != c.epoch || opts.Since.Offset > c.offset {
		return nil
	}
	if opts.Since.Offset == c.offset {
		res.Recovered = true
		return nil
	}
	if c.history == nil || c.history.n == 0 || c.history.oldest() > opts.Since.Offset+1 {
		return nil // the next publication the client needs is gone
	}
	pubs := c.history.after(opts.Since.Offset, h.maxRecover+1)
	if len(pubs) <= h.maxRecover {
		res.Recovered, res.Publications = true, pubs
	}
	return nil
}

// Unsubscribe removes s from channel. It reports whether s was subscribed.
func (h *Hub) Unsubscribe(channel string, s Subscriber) bool {
	sh := h.shardOf(channel)
	sh.mu.RLock()
	c := sh.channels[channel]
	sh.mu.RUnlock()
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.index[s]
	if !ok {
		return false
	}
	last := len(c.subs) - 1
	c.subs[i] = c.subs[last]
	c.index[c.subs[i].s] = i
	c.subs[last] = subscription{}
	c.subs = c.subs[:last]
	delete(c.index, s)
	c.lastUsed = h.now()
	h.metrics.SubscriptionsChanged(-1)
	if c.ns.Presence {
		info := s.Info()
		delete(c.presence, info.Client)
		if pb := h.presenceBroker(); pb != nil {
			pb.PublishPresence(channel, false, info)
		}
		if c.ns.JoinLeave && len(c.subs) > 0 {
			frame := protocol.EncodeJoinLeave(protocol.PushLeave, channel, info)
			for _, o := range c.subs {
				o.s.Deliver(frame, "", 0)
			}
		}
	}
	return true
}

// Subscribers returns the current subscribers of channel.
func (h *Hub) Subscribers(channel string) []Subscriber {
	sh := h.shardOf(channel)
	sh.mu.RLock()
	c := sh.channels[channel]
	sh.mu.RUnlock()
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Subscriber, len(c.subs))
	for i, sub := range c.subs {
		out[i] = sub.s
	}
	return out
}

// History returns the newest limit publications of channel or, when since is
// set, the first limit after it, oldest first. limit is clamped here, for
// every caller: 0 (or less) and anything over Config.MaxHistory mean
// MaxHistory. ok is false when since cannot be recovered. Reading a channel
// that does not exist creates nothing: it has no publications and the zero
// position.
func (h *Hub) History(ctx context.Context, channel string, limit int, since *Position) (pubs []protocol.Publication, top Position, ok bool, err error) {
	ns, err := h.NamespaceOf(channel)
	if err != nil {
		return nil, Position{}, false, err
	}
	if limit <= 0 || limit > h.maxHistory {
		limit = h.maxHistory
	}
	if b := h.backend(ns.Name); b != nil {
		if since != nil {
			return b.Since(ctx, channel, since.Epoch, since.Offset, limit)
		}
		pubs, top, err := b.Last(ctx, channel, limit)
		return pubs, top, err == nil, err
	}
	c := h.lookChannel(channel)
	if c == nil {
		// No publications at the zero position: caught up there, nowhere else.
		return nil, Position{}, since == nil || *since == (Position{}), nil
	}
	defer c.mu.Unlock()
	top = Position{Epoch: c.epoch, Offset: c.offset}
	if c.history != nil && c.ns.HistoryTTL > 0 {
		c.history.expire(h.now().Add(-c.ns.HistoryTTL), h.owners.release)
	}
	if since == nil {
		if c.history == nil {
			return nil, top, true, nil
		}
		return c.history.last(limit), top, true, nil
	}
	if since.Epoch != c.epoch || since.Offset > c.offset {
		return nil, top, false, nil
	}
	if since.Offset == c.offset {
		return nil, top, true, nil
	}
	if c.history == nil || c.history.n == 0 || c.history.oldest() > since.Offset+1 {
		return nil, top, false, nil
	}
	return c.history.after(since.Offset, limit), top, true, nil
}

// Presence returns who is subscribed to channel. It returns an empty list for
// channels whose namespace does not track presence; callers check the option.
// In cluster mode it asks every live node (PresenceBroker.GatherPresence),
// so it waits for the slowest of them.
func (h *Hub) Presence(channel string) []protocol.ClientInfo {
	pb := h.presenceBroker()
	if pb == nil {
		return h.localPresence(channel)
	}
	out := h.LocalPresence(channel)
	seen := make(map[string]bool, len(out))
	for _, info := range out {
		seen[info.Client] = true
	}
	for _, info := range pb.GatherPresence(channel) {
		if !seen[info.Client] {
			seen[info.Client] = true
			out = append(out, info)
		}
	}
	return out
}

func (h *Hub) localPresence(channel string) []protocol.ClientInfo {
	sh := h.shardOf(channel)
	sh.mu.RLock()
	c := sh.channels[channel]
	sh.mu.RUnlock()
	out := []protocol.ClientInfo{}
	if c == nil {
		return out
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, info := range c.presence {
		out = append(out, info)
	}
	return out
}

// janitor removes channels that have no subscribers and nothing worth keeping.
func (h *Hub) janitor() {
	defer close(h.done)
	t := time.NewTicker(h.idle / 2)
	defer t.Stop()
	var check <-chan time.Time // the position check, in cluster mode (check.go)
	if h.syncEvery > 0 {
		ct := time.NewTicker(h.syncEvery)
		defer ct.Stop()
		check = ct.C
	}
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
			h.sweep()
		case <-check:
			h.checkPositions()
		}
	}
}

func (h *Hub) sweep() {
	now := h.now()
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.Lock()
		for name, c := range s.channels {
			c.mu.Lock()
			if len(c.subs) == 0 && now.Sub(c.lastUsed) > h.idle {
				if c.history != nil && c.ns.HistoryTTL > 0 {
					c.history.expire(now.Add(-c.ns.HistoryTTL), h.owners.release)
				}
				// A channel whose history is still live keeps its epoch, so
				// that clients can resume; an empty one can go.
				if c.history == nil || c.history.n == 0 {
					c.removed = true
					delete(s.channels, name)
					h.owners.removeChannel(c.owner)
					h.metrics.ChannelsChanged(-1)
				}
			}
			c.mu.Unlock()
		}
		s.mu.Unlock()
	}
}

func newEpoch() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b[:])
}

type nopMetrics struct{}

func (nopMetrics) Published(string, int)    {}
func (nopMetrics) ChannelsChanged(int)      {}
func (nopMetrics) SubscriptionsChanged(int) {}
