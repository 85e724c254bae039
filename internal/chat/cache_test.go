package chat

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/store"
	"github.com/sori-dev/sori/internal/store/sqlite"
)

// Every membership change must take effect on the next post, although the
// post checks membership against the cache.
func TestMemberCacheFollowsMembershipChanges(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, sqlite.Options{})
	alice, bob, carol := e.user(t, "alice"), e.user(t, "bob"), e.user(t, "carol")
	pub := must(e.svc.CreateRoom(ctx, alice, NewRoom{Name: "lobby", Kind: store.RoomPublic}))(t)
	priv := must(e.svc.CreateRoom(ctx, alice, NewRoom{Name: "secret", Kind: store.RoomPrivate}))(t)

	// Kick: bob's role is cached by his posts, and he is refused right after.
	must(e.svc.Invite(ctx, alice, priv.ID, "bob"))(t)
	must(e.svc.Post(ctx, bob, priv.ID, "in", 0))(t)
	must(e.svc.Post(ctx, bob, priv.ID, "still in", 0))(t)
	if err := e.svc.Kick(ctx, alice, priv.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.Post(ctx, bob, priv.ID, "after the kick", 0)
	wantCode(t, "post after kick", err, 104)
	wantCode(t, "subscribe after kick", e.svc.Authorizer().CanSubscribe(ctx, "bob", RoomChannel(priv.ID)), 104)

	// Leave, then join again.
	must(e.svc.Join(ctx, carol, pub.ID))(t)
	must(e.svc.Post(ctx, carol, pub.ID, "hi", 0))(t)
	if err := e.svc.Leave(ctx, carol, pub.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Post(ctx, carol, pub.ID, "after leaving", 0)
	wantCode(t, "post after leave", err, 104)
	must(e.svc.Join(ctx, carol, pub.ID))(t)
	must(e.svc.Post(ctx, carol, pub.ID, "back", 0))(t)

	// Role changes: an admin may delete others' messages, a demoted one not.
	must(e.svc.Join(ctx, bob, pub.ID))(t)
	if err := e.svc.SetRole(ctx, alice, pub.ID, "bob", store.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	m1 := must(e.svc.Post(ctx, carol, pub.ID, "one", 0))(t)
	m2 := must(e.svc.Post(ctx, carol, pub.ID, "two", 0))(t)
	must(e.svc.Delete(ctx, bob, pub.ID, m1.Seq))(t) // caches bob as admin
	if err := e.svc.SetRole(ctx, alice, pub.ID, "bob", store.RoleMember); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Delete(ctx, bob, pub.ID, m2.Seq)
	wantCode(t, "delete by a demoted admin", err, 104)
}

// Posts racing a kick: once Kick has returned, no post of the kicked member
// may succeed. Run with -race.
func TestMemberCacheKickDuringPosts(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, sqlite.Options{})
	alice := e.user(t, "alice")
	e.user(t, "bob")
	r := must(e.svc.CreateRoom(ctx, alice, NewRoom{Name: "team", Kind: store.RoomPrivate}))(t)
	for round := range 5 {
		bob := must(e.st.GetUserByName(ctx, "bob"))(t)
		must(e.svc.Invite(ctx, alice, r.ID, "bob"))(t)
		var kicked atomic.Bool
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for {
					after := kicked.Load()
					_, err := e.svc.Post(ctx, bob, r.ID, "spam", 0)
					if err == nil && after {
						t.Errorf("round %d: a post that started after Kick returned was accepted", round)
						return
					}
					if err != nil {
						if !errors.Is(err, protocol.ErrPermissionDenied) {
							t.Errorf("round %d: post: %v", round, err)
						}
						return
					}
				}
			})
		}
		must(e.svc.Post(ctx, alice, r.ID, "bye bob", 0))(t)
		if err := e.svc.Kick(ctx, alice, r.ID, "bob"); err != nil {
			t.Fatal(err)
		}
		kicked.Store(true)
		wg.Wait()
	}
}

func TestMemberCacheDropsStaleFill(t *testing.T) {
	c := newMemberCache(2)
	k := memberKey{room: 1, user: 2}
	_, gen, ok := c.get(k)
	if ok {
		t.Fatal("hit in an empty cache")
	}
	c.invalidate(k) // the membership changes after the store was read
	c.fill(k, store.RoleAdmin, gen)
	if _, _, ok := c.get(k); ok {
		t.Fatal("a fill older than an invalidation was kept")
	}
	_, gen, _ = c.get(k)
	c.fill(k, store.RoleAdmin, gen)
	if r, _, ok := c.get(k); !ok || r != store.RoleAdmin {
		t.Fatalf("fill not kept: %q %v", r, ok)
	}
	for i := range int64(10) {
		_, gen, _ := c.get(memberKey{room: 9, user: i})
		c.fill(memberKey{room: 9, user: i}, store.RoleMember, gen)
	}
	if n := len(c.roles); n > 2 {
		t.Fatalf("cache holds %d entries, bound is 2", n)
	}
}

func TestMemberCacheOff(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, sqlite.Options{})
	svc, err := New(Config{Store: e.st, Hub: e.hub, DataDir: e.dir, MemberCacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	alice := e.user(t, "alice")
	r := must(svc.CreateRoom(ctx, alice, NewRoom{Name: "team", Kind: store.RoomPublic}))(t)
	if _, err := svc.memberRole(ctx, alice, r.ID); err != nil {
		t.Fatal(err)
	}
	if len(svc.members.roles) != 0 {
		t.Fatal("a disabled cache was filled")
	}
}

func TestSubjectCacheKeepsNoPasswordHash(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, sqlite.Options{})
	must(e.st.CreateUser(ctx, store.User{Username: "alice", PasswordHash: "secret-hash"}))(t)
	for range 2 { // a miss, then a hit
		u, err := e.svc.resolve(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if u.Username != "alice" || u.PasswordHash != "" {
			t.Fatalf("resolved %+v", u)
		}
	}
	if _, err := e.svc.resolve(ctx, "nobody"); code(err) != 104 {
		t.Fatalf("unknown subject: %v", err)
	}
}
