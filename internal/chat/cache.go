package chat

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/sori-dev/sori/internal/store"
)

// The chat write path checks, for every message, who the sender is and
// whether they are a member of the room. Both answers are read far more
// often than they change, so the Service keeps them in memory:
//
//   - subjects: token subject -> user. Users are never deleted or renamed,
//     so a user found once stays right. Unknown subjects are not cached.
//   - members: (room, user) -> role. Membership changes only through the
//     Service's store (memberStore below), which drops the entry after the
//     store has made the change, so the next check reads the store again: a
//     kicked member is refused from the moment Kick returns. Non-members
//     are not cached.
//
// This is only correct while every membership change goes through this
// process (see Config.MemberCacheSize), or, in cluster mode, while every
// node hears of the others' changes (Config.MemberChanged, ForgetMember,
// PauseMemberCache).

// memberKey names one membership.
type memberKey struct{ room, user int64 }

// memberCache maps memberships to roles. It is safe for concurrent use.
//
// A lookup that misses reads the store and then fills the entry; a change
// made between that read and the fill would be lost if the fill went ahead,
// so every invalidation bumps gen, and a fill carrying an older gen is
// dropped.
type memberCache struct {
	mu    sync.RWMutex
	gen   uint64
	roles map[memberKey]store.Role
	max   int // 0 = the cache is off
	// changed hears each invalidation made here (Config.MemberChanged),
	// after it; paused makes every lookup miss and every fill a no-op
	// (cluster mode, while this node cannot hear the others' changes).
	changed func(room, user int64)
	paused  atomic.Bool
}

func newMemberCache(max int) *memberCache {
	return &memberCache{roles: make(map[memberKey]store.Role), max: max}
}

// get returns the cached role of k, or the generation a fill must carry.
func (c *memberCache) get(k memberKey) (store.Role, uint64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	r, ok := c.roles[k]
	return r, c.gen, ok && !c.paused.Load()
}

// fill caches k's role read from the store while the cache was at gen.
func (c *memberCache) fill(k memberKey, r store.Role, gen uint64) {
	if c.max <= 0 || c.paused.Load() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return // membership changed since the read: it may be stale
	}
	if _, ok := c.roles[k]; !ok && len(c.roles) >= c.max {
		evictOne(c.roles)
	}
	c.roles[k] = r
}

// invalidate forgets k and fails every fill that read the store before now,
// then tells changed (the other nodes, in cluster mode).
func (c *memberCache) invalidate(k memberKey) {
	c.forget(k)
	if c.changed != nil {
		c.changed(k.room, k.user)
	}
}

// invalidateAll forgets everything (a change whose keys are unknown).
func (c *memberCache) invalidateAll() {
	c.forgetAll()
	if c.changed != nil {
		c.changed(0, 0)
	}
}

// forget is invalidate without telling anyone (a change heard from another
// node).
func (c *memberCache) forget(k memberKey) {
	c.mu.Lock()
	c.gen++
	delete(c.roles, k)
	c.mu.Unlock()
}

func (c *memberCache) forgetAll() {
	c.mu.Lock()
	c.gen++
	clear(c.roles)
	c.mu.Unlock()
}

// subjectCache maps token subjects to users. It is safe for concurrent use.
type subjectCache struct {
	mu    sync.RWMutex
	users map[string]store.User
	max   int
}

func (c *subjectCache) get(subject string) (store.User, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	u, ok := c.users[subject]
	return u, ok
}

func (c *subjectCache) put(subject string, u store.User) {
	u.PasswordHash = "" // the only field that changes; chat never uses it
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.users[subject]; !ok && len(c.users) >= c.max {
		evictOne(c.users)
	}
	c.users[subject] = u
}

// evictOne removes an arbitrary entry (Go randomizes where a map range
// starts), which keeps a full cache bounded at no bookkeeping cost per hit.
func evictOne[K comparable, V any](m map[K]V) {
	for k := range m {
		delete(m, k)
		return
	}
}

// memberStore is the Service's store: every membership change made through
// it invalidates the member cache once the store has made it, whether it
// succeeded or not. Reads pass through.
type memberStore struct {
	store.Store
	members *memberCache
}

func (s memberStore) CreateRoom(ctx context.Context, r store.Room) (store.Room, error) {
	defer s.members.invalidateAll() // a new room has no cached members; keep fills honest anyway
	return s.Store.CreateRoom(ctx, r)
}

func (s memberStore) GetOrCreateDirectRoom(ctx context.Context, a, b int64) (store.Room, bool, error) {
	r, created, err := s.Store.GetOrCreateDirectRoom(ctx, a, b)
	if err != nil || created {
		s.members.invalidateAll()
	}
	return r, created, err
}

func (s memberStore) AddMember(ctx context.Context, roomID, userID int64, role store.Role) (store.Member, error) {
	defer s.members.invalidate(memberKey{roomID, userID})
	return s.Store.AddMember(ctx, roomID, userID, role)
}

func (s memberStore) RemoveMember(ctx context.Context, roomID, userID int64) error {
	defer s.members.invalidate(memberKey{roomID, userID})
	return s.Store.RemoveMember(ctx, roomID, userID)
}

func (s memberStore) SetRole(ctx context.Context, roomID, userID int64, role store.Role) error {
	defer s.members.invalidate(memberKey{roomID, userID})
	return s.Store.SetRole(ctx, roomID, userID, role)
}
