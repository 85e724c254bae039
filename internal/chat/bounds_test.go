package chat

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/store"
	"github.com/sori-dev/sori/internal/store/sqlite"
)

// TestLiveChannelsTakeOnlyServerSignals (issue 9.8): the live channel's
// Backend refuses a publication that did not come from the chat service,
// whoever makes it, so a token's publish grant cannot forge notices; the
// service's own signals pass.
func TestLiveChannelsTakeOnlyServerSignals(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, sqlite.Options{})
	alice := e.user(t, "alice")
	r := must(e.svc.CreateRoom(ctx, alice, NewRoom{Name: "p", Kind: store.RoomPublic}))(t)
	_, err := e.hub.Publish(ctx, LiveChannel(r.ID), []byte(`{"type":"member_kicked","member":"alice"}`), "mallory")
	wantCode(t, "client publication on #live", err, 104)
	_, err = e.hub.Publish(ctx, LiveChannel(r.ID), []byte(`{"type":"typing"}`), "")
	wantCode(t, "server API publication on #live", err, 104)
	if err := e.svc.Typing(ctx, alice, r.ID); err != nil {
		t.Fatalf("the service's own signal: %v", err)
	}
	if top := e.svc.Backend().liveTop(LiveChannel(r.ID)); top.Offset != 1 {
		t.Fatalf("live offset %d after one signal and two refusals, want 1", top.Offset)
	}
}

// TestLiveCountersAreBounded (issue 9.12): one counter per live channel
// grew for ever; past the bound the counters restart under a new epoch.
func TestLiveCountersAreBounded(t *testing.T) {
	e := newEnv(t, sqlite.Options{})
	b := e.svc.Backend()
	b.maxLive = 3
	ctx := context.WithValue(context.Background(), serverSignal{}, true)
	epoch := b.liveTop(LiveChannel(1)).Epoch
	for i := int64(1); i <= 3; i++ {
		if _, ep, err := b.Append(ctx, LiveChannel(i), protocol.Publication{}); err != nil || ep != epoch {
			t.Fatalf("append to live %d: epoch %q err %v, want %q", i, ep, err, epoch)
		}
	}
	_, ep, err := b.Append(ctx, LiveChannel(4), protocol.Publication{})
	if err != nil || ep == epoch || len(b.live) != 1 {
		t.Fatalf("fourth live channel: epoch %q (was %q), %d counters, err %v; want a new epoch and 1 counter", ep, epoch, len(b.live), err)
	}
	if top := b.liveTop(LiveChannel(99)); top.Offset != 0 || len(b.live) != 1 {
		t.Fatalf("reading a live channel's position counted it: %+v, %d counters", top, len(b.live))
	}
}

// TestNameAndEpochCachesAreBounded (issue 9.12): user id -> name and room
// id -> epoch grew with every user and room ever seen.
func TestNameAndEpochCachesAreBounded(t *testing.T) {
	e := newEnv(t, sqlite.Options{})
	for i := range nameCacheSize + 10 {
		e.svc.rememberUser(store.User{ID: int64(i + 1), Username: fmt.Sprint("u", i)})
	}
	for i := range epochCacheSize + 10 {
		e.svc.rememberRoom(store.Room{ID: int64(i + 1), Epoch: "e"})
	}
	if len(e.svc.names) != nameCacheSize || len(e.svc.epochs) != epochCacheSize {
		t.Fatalf("caches hold %d names and %d epochs, want %d and %d", len(e.svc.names), len(e.svc.epochs), nameCacheSize, epochCacheSize)
	}
}

// failingGetUser is a store whose GetUser fails, as a database can at any
// moment.
type failingGetUser struct{ store.Store }

func (failingGetUser) GetUser(context.Context, int64) (store.User, error) {
	return store.User{}, errors.New("disk I/O error")
}

// TestAppendReportsWhatItCommitted (issue 9.12): Append used to look the
// author's name up after the commit, so a failing read answered an error
// for a message that was in the room (and the client sent it again).
func TestAppendReportsWhatItCommitted(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, sqlite.Options{})
	alice := e.user(t, "alice")
	r := must(e.svc.CreateRoom(ctx, alice, NewRoom{Name: "p", Kind: store.RoomPublic}))(t)
	e.svc.st = memberStore{Store: failingGetUser{e.st}, members: e.svc.members}
	must(e.hub.Publish(ctx, RoomChannel(r.ID), []byte(`{"type":"message","text":"one"}`), "alice"))(t)
	e.svc.mu.Lock()
	clear(e.svc.names) // as if evicted
	e.svc.mu.Unlock()
	pos, err := e.hub.Publish(ctx, RoomChannel(r.ID), []byte(`{"type":"message","text":"two"}`), "alice")
	if err != nil {
		t.Fatalf("second message: %v, but the store has seq %d", err, must(e.st.RoomPosition(ctx, r.ID))(t).Seq)
	}
	if pos.Offset != 2 {
		t.Fatalf("second message at offset %d, want 2", pos.Offset)
	}
}
