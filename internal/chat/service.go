package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sori-dev/sori/internal/hub"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/store"
)

// Namespace is the hub namespace of chat rooms: room 42 is channel
// "chat:42", and its ephemeral sibling (typing, receipts, membership
// notices) is "chat:42#live".
const Namespace = "chat"

// liveSuffix marks a room's ephemeral sibling channel.
const liveSuffix = "#live"

// RoomChannel returns the channel of a room's durable event log.
func RoomChannel(roomID int64) string { return Namespace + ":" + strconv.FormatInt(roomID, 10) }

// LiveChannel returns the channel of a room's ephemeral signals.
func LiveChannel(roomID int64) string { return RoomChannel(roomID) + liveSuffix }

// parseChannel splits "chat:<id>" or "chat:<id>#live".
func parseChannel(ch string) (roomID int64, live bool, ok bool) {
	rest, found := strings.CutPrefix(ch, Namespace+":")
	if !found {
		return 0, false, false
	}
	rest, live = strings.CutSuffix(rest, liveSuffix)
	id, ok := ParseID(rest)
	return id, live, ok
}

// Unsubscriber ends a user's live subscriptions to a channel (on every
// connection), so that a kicked member stops receiving the room at once.
type Unsubscriber interface {
	UnsubscribeUser(user, channel string)
}

// Config configures a Service. Store and Hub are required.
type Config struct {
	Store store.Store
	Hub   *hub.Hub
	// Resolve returns the chat user a verified token subject names,
	// provisioning it when the application vouches for a new user (see
	// accounts.Service.UserForSubject). nil = look the name up only.
	Resolve func(ctx context.Context, subject string) (store.User, error)
	// Unsubscriber ends the subscriptions of removed members; nil = none
	// (then a removed member keeps a live subscription until it reconnects).
	Unsubscriber Unsubscriber
	DataDir      string // files are kept in DataDir/files, unless Blobs is set
	Blobs        Blobs  // nil = files on disk; set in cluster mode, where every node must read them
	MaxFileSize  int64  // bytes per upload; 0 = 10 MiB
	// UploadQuota bounds the bytes of files one user may have stored
	// (error 120); 0 = DefaultUploadQuota.
	UploadQuota int64
	// DiskReserve is the free space the data dir's file system must keep:
	// an upload is refused (error 121) when less than DiskReserve plus one
	// MaxFileSize is free, so that uploads run out before chat writes do.
	// 0 = no reserve.
	DiskReserve int64
	// FreeSpace reports the bytes free for the server on the file system
	// of dir; nil = statfs (see freespace.go).
	FreeSpace func(dir string) (int64, error)
	Log       *slog.Logger // nil = discard
	// MemberCacheSize bounds the memberships kept in memory for the
	// per-message check (see cache.go); 0 = 65536, negative = no cache.
	// The cache is right only while every membership change goes through
	// this Service, i.e. one process serves the data dir; turn it off when
	// another process can change memberships, unless that process tells
	// this one (MemberChanged on its side, ForgetMember on this one).
	MemberCacheSize int
	// MemberChanged is told, after the store made it, of every membership
	// change made through this Service (room and user ids; 0, 0 = any): in
	// cluster mode the server passes it to every other node, which calls
	// ForgetMember, and returns once they did. nil = nobody.
	MemberChanged func(room, user int64)
	// Notifier hears of mentions, direct messages and invitations (Web
	// Push); nil = none.
	Notifier Notifier
	// AppendTimeout bounds the store's part of one append to a room (its
	// checks and its commit), on top of the caller's own deadline, so that
	// a wedged store (a lock held elsewhere, a stalled disk or database)
	// answers error 122 instead of holding request handlers and
	// real-time publishes; 0 = DefaultAppendTimeout.
	AppendTimeout time.Duration
}

// DefaultAppendTimeout is Config.AppendTimeout's default: the real-time
// connection's command timeout (session.Config.CommandTimeout), which
// bounds a publish over WebSocket as well.
const DefaultAppendTimeout = 10 * time.Second

// Cache bounds.
const (
	defaultMemberCacheSize = 1 << 16
	subjectCacheSize       = 1 << 16
	nameCacheSize          = 1 << 16 // user id -> name; an evicted name is read again
	epochCacheSize         = 1 << 16 // room id -> epoch; likewise
)

// Service applies the chat rules. It is safe for concurrent use.
//
// It caches facts that never change once written: user id -> name and
// token subject -> user (users are never renamed or deleted), room id ->
// epoch (fixed at creation). It also caches roles for the checks of the
// write path, invalidated by every membership change it makes (cache.go),
// so a kick takes effect on the next action; actions that change
// membership or roles read the store.
type Service struct {
	cfg     Config
	st      store.Store // a memberStore: membership changes invalidate members
	hub     *hub.Hub
	log     *slog.Logger
	backend *Backend

	members  *memberCache
	subjects *subjectCache

	observers memberObservers // OnMemberRemoved (observe.go)

	mu     sync.RWMutex
	names  map[int64]string         // user id -> username; at most nameCacheSize
	epochs map[int64]string         // room id -> epoch; at most epochCacheSize
	kinds  map[int64]store.RoomKind // room id -> kind (fixed at creation); at most epochCacheSize
}

// New returns a Service for cfg.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Hub == nil {
		return nil, errors.New("chat: a store and a hub are required")
	}
	if cfg.MaxFileSize <= 0 {
		cfg.MaxFileSize = 10 << 20
	}
	if cfg.UploadQuota <= 0 {
		cfg.UploadQuota = DefaultUploadQuota
	}
	if cfg.FreeSpace == nil {
		cfg.FreeSpace = freeSpace
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.AppendTimeout <= 0 {
		cfg.AppendTimeout = DefaultAppendTimeout
	}
	if cfg.MemberCacheSize == 0 {
		cfg.MemberCacheSize = defaultMemberCacheSize
	}
	members := newMemberCache(max(0, cfg.MemberCacheSize))
	members.changed = cfg.MemberChanged
	s := &Service{
		cfg: cfg, st: memberStore{Store: cfg.Store, members: members}, hub: cfg.Hub, log: cfg.Log,
		members:  members,
		subjects: &subjectCache{users: map[string]store.User{}, max: subjectCacheSize},
		names:    map[int64]string{}, epochs: map[int64]string{}, kinds: map[int64]store.RoomKind{},
	}
	if s.cfg.Resolve == nil {
		s.cfg.Resolve = func(ctx context.Context, name string) (store.User, error) { return s.st.GetUserByName(ctx, name) }
	}
	s.backend = newBackend(s)
	return s, nil
}

// Backend returns the hub Backend for the chat namespace.
func (s *Service) Backend() *Backend { return s.backend }

// Authorizer returns the session Authorizer for the chat namespace.
func (s *Service) Authorizer() *Authorizer { return &Authorizer{s: s} }

// Errors of chat actions, as numbered protocol errors.
var (
	errNotMember   = protocol.ErrPermissionDenied.WithMessage("not a member of this room")
	errNoRoom      = protocol.ErrNotFound.WithMessage("no such room")
	errNoUser      = protocol.ErrNotFound.WithMessage("no such user")
	errNoMessage   = protocol.ErrNotFound.WithMessage("no such message")
	errRoleTooLow  = protocol.ErrPermissionDenied.WithMessage("your role in this room does not allow this")
	errDirectRooms = protocol.ErrPermissionDenied.WithMessage("direct conversations have exactly their two members")
)

// storeErr turns the store's sentinels into numbered errors; others pass
// through to become 100 at the edge (and be logged there).
// storeDown turns an error of a store that cannot be reached (a database
// restart, failover or network cut) into error 122, "try again shortly",
// so that clients retry instead of taking it for a server bug (100). A
// write cut off that way may have committed: a retry with the same
// client_id is answered with the stored message, not a second one.
//
// A deadline that passed while waiting on the store (AppendTimeout, or the
// caller's) is 122 too, with its own message: the store is there but did
// not answer in time.
func storeDown(err error) error {
	if err == nil {
		return nil
	}
	var perr *protocol.Error
	if errors.As(err, &perr) {
		return err
	}
	switch {
	case errors.Is(err, store.ErrUnavailable):
		return protocol.ErrStoreDown
	case errors.Is(err, context.DeadlineExceeded):
		return errStoreSlow
	}
	return err
}

// errStoreSlow answers a store call that outlived its deadline.
var errStoreSlow = protocol.ErrStoreDown.WithMessage("the chat store did not answer in time: try again shortly; " +
	"a message may have been stored all the same, so retry it with the same client_id")

func storeErr(err error, notFound *protocol.Error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return notFound
	case errors.Is(err, store.ErrConflict):
		return protocol.ErrConflict.WithMessage(what)
	case errors.Is(err, store.ErrInvalid):
		return protocol.ErrBadRequest.WithMessage(what)
	}
	return err
}

func (s *Service) userName(ctx context.Context, id int64) (string, error) {
	s.mu.RLock()
	n, ok := s.names[id]
	s.mu.RUnlock()
	if ok {
		return n, nil
	}
	u, err := s.st.GetUser(ctx, id)
	if err != nil {
		return "", fmt.Errorf("chat: user %d: %w", id, err)
	}
	s.rememberUser(u)
	return u.Username, nil
}

func (s *Service) rememberUser(u store.User) {
	s.mu.Lock()
	if _, ok := s.names[u.ID]; !ok && len(s.names) >= nameCacheSize {
		evictOne(s.names)
	}
	s.names[u.ID] = u.Username
	s.mu.Unlock()
}

// resolve returns the user behind a token subject (without its password
// hash).
func (s *Service) resolve(ctx context.Context, subject string) (store.User, error) {
	if subject == "" {
		return store.User{}, protocol.ErrPermissionDenied.WithMessage("chat needs a logged-in user")
	}
	if u, ok := s.subjects.get(subject); ok {
		return u, nil
	}
	u, err := s.cfg.Resolve(ctx, subject)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, protocol.ErrPermissionDenied.WithMessage("unknown chat user")
	}
	if err != nil {
		return store.User{}, err
	}
	s.rememberUser(u)
	s.subjects.put(subject, u)
	u.PasswordHash = ""
	return u, nil
}

func (s *Service) roomEpoch(ctx context.Context, roomID int64) (string, error) {
	s.mu.RLock()
	e, ok := s.epochs[roomID]
	s.mu.RUnlock()
	if ok {
		return e, nil
	}
	r, err := s.st.GetRoom(ctx, roomID)
	if err != nil {
		return "", storeErr(err, errNoRoom, "")
	}
	s.rememberRoom(r)
	return r.Epoch, nil
}

func (s *Service) rememberRoom(r store.Room) {
	s.mu.Lock()
	if _, ok := s.epochs[r.ID]; !ok && len(s.epochs) >= epochCacheSize {
		evictOne(s.epochs)
	}
	s.epochs[r.ID] = r.Epoch
	if _, ok := s.kinds[r.ID]; !ok && len(s.kinds) >= epochCacheSize {
		evictOne(s.kinds)
	}
	s.kinds[r.ID] = r.Kind
	s.mu.Unlock()
}

// roomKind returns a room's kind, which never changes.
func (s *Service) roomKind(ctx context.Context, roomID int64) (store.RoomKind, error) {
	s.mu.RLock()
	k, ok := s.kinds[roomID]
	s.mu.RUnlock()
	if ok {
		return k, nil
	}
	r, err := s.st.GetRoom(ctx, roomID)
	if err != nil {
		return "", storeErr(err, errNoRoom, "")
	}
	s.rememberRoom(r)
	return r.Kind, nil
}

// member returns actor's membership of a room, or errNotMember. A room that
// does not exist is reported the same way, so that ids of private rooms
// cannot be probed.
func (s *Service) member(ctx context.Context, actor store.User, roomID int64) (store.Member, error) {
	m, err := s.st.GetMember(ctx, roomID, actor.ID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Member{}, errNotMember
	}
	if err != nil {
		return store.Member{}, fmt.Errorf("chat: membership of room %d: %w", roomID, err)
	}
	return m, nil
}

// memberRole returns actor's role in a room, or errNotMember, from the
// member cache when it can: the check of every message and subscription.
// A cached role is dropped by any change to it made through s.st, so it is
// never older than the last Join, Leave, Kick or SetRole that returned.
func (s *Service) memberRole(ctx context.Context, actor store.User, roomID int64) (store.Role, error) {
	k := memberKey{room: roomID, user: actor.ID}
	r, gen, ok := s.members.get(k)
	if ok {
		return r, nil
	}
	m, err := s.member(ctx, actor, roomID)
	if err != nil {
		return "", err
	}
	s.members.fill(k, m.Role, gen)
	return m.Role, nil
}

// roomAsMember returns the room and actor's membership of it.
func (s *Service) roomAsMember(ctx context.Context, actor store.User, roomID int64) (store.Room, store.Member, error) {
	m, err := s.member(ctx, actor, roomID)
	if err != nil {
		return store.Room{}, store.Member{}, err
	}
	r, err := s.st.GetRoom(ctx, roomID)
	if err != nil {
		return store.Room{}, store.Member{}, storeErr(err, errNoRoom, "")
	}
	s.rememberRoom(r)
	return r, m, nil
}

// rank orders roles: a member may act on members of a lower rank only.
func rank(r store.Role) int {
	switch r {
	case store.RoleOwner:
		return 3
	case store.RoleAdmin:
		return 2
	case store.RoleMember:
		return 1
	}
	return 0
}

// signal publishes an ephemeral notice on a room's live channel. Failures
// are logged, not returned: the durable action already happened.
func (s *Service) signal(ctx context.Context, roomID int64, user string, data any) {
	b, err := jsonMarshal(data)
	if err == nil {
		_, err = s.hub.Publish(context.WithValue(ctx, serverSignal{}, true), LiveChannel(roomID), b, user)
	}
	if err != nil {
		s.log.Warn("chat signal failed", "channel", LiveChannel(roomID), "err", err)
	}
}

// ProfileChanged tells the rooms of user u that u's display name or avatar
// changed, after the change was committed: the live signal
// {"type":"profile","user","display_name","avatar_url"} on each room's
// "#live" channel, so that the pages showing one of those rooms update the
// name and picture without a reload (docs/api.md). avatarURL is u's avatar
// URL ("" for none), which the accounts service computes. One publication
// per room of u; failures are logged, the change stands.
func (s *Service) ProfileChanged(ctx context.Context, u store.User, avatarURL string) {
	rooms, err := s.st.ListUserRooms(ctx, u.ID)
	if err != nil {
		s.log.Warn("chat profile signal: list rooms", "user", u.Username, "err", err)
		return
	}
	data := map[string]any{"type": "profile", "user": u.Username, "display_name": u.DisplayName, "avatar_url": avatarURL}
	for _, r := range rooms {
		s.signal(ctx, r.ID, u.Username, data)
	}
}

// PersonalChannel returns the channel of a user's personal events (see
// docs/api.md, "Personal events"): the "user" namespace, which only that
// user may subscribe to and only the server publishes on.
func PersonalChannel(username string) string { return "user:" + username }

// notify publishes a personal event for the user named username, after the
// change it reports was committed. Failures are logged, not returned: the
// change stands, and the user's next room list shows it. A hub without the
// "user" namespace makes this a no-op that logs at debug level.
func (s *Service) notify(ctx context.Context, username, by string, data map[string]any) {
	if username == by {
		return // nothing for what users did themselves
	}
	data["by"] = by
	b, err := jsonMarshal(data)
	if err == nil {
		_, err = s.hub.Publish(ctx, PersonalChannel(username), b, "")
	}
	if err != nil {
		s.log.Debug("chat personal event not published", "user", username, "type", data["type"], "err", err)
	}
}

// dropSubscriptions ends a removed member's live subscriptions to a room.
func (s *Service) dropSubscriptions(user string, roomID int64) {
	if s.cfg.Unsubscriber == nil {
		return
	}
	s.cfg.Unsubscriber.UnsubscribeUser(user, RoomChannel(roomID))
	s.cfg.Unsubscriber.UnsubscribeUser(user, LiveChannel(roomID))
}
