package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sori-dev/sori/internal/hub"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/store"
	"github.com/sori-dev/sori/internal/store/sqlite"
)

type env struct {
	svc *Service
	st  store.Store
	hub *hub.Hub
	dir string
}

func newEnv(t testing.TB, opts sqlite.Options) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "sori.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	h, err := hub.New(hub.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	svc, err := New(Config{Store: st, Hub: h, DataDir: dir, MaxFileSize: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	h.SetBackend(Namespace, svc.Backend())
	return &env{svc: svc, st: st, hub: h, dir: dir}
}

func (e *env) user(t testing.TB, name string) store.User {
	t.Helper()
	u, err := e.st.CreateUser(context.Background(), store.User{Username: name})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func code(err error) int {
	var perr *protocol.Error
	if errors.As(err, &perr) {
		return perr.Code
	}
	return -1
}

func wantCode(t *testing.T, what string, err error, c int) {
	t.Helper()
	if code(err) != c {
		t.Fatalf("%s: err %v, want code %d", what, err, c)
	}
}

// must fails the test on err: must(f())(t).
func must[T any](v T, err error) func(*testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func TestRolesAndMembership(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, sqlite.Options{})
	alice, bob, carol, dan := e.user(t, "alice"), e.user(t, "bob"), e.user(t, "carol"), e.user(t, "dan")

	priv := must(e.svc.CreateRoom(ctx, alice, NewRoom{Name: "secret", Kind: store.RoomPrivate}))(t)
	pub := must(e.svc.CreateRoom(ctx, alice, NewRoom{Name: "lobby", Kind: store.RoomPublic, Topic: "hi"}))(t)
	_, err := e.svc.CreateRoom(ctx, bob, NewRoom{Name: "LOBBY", Kind: store.RoomPublic})
	wantCode(t, "room name taken (other case)", err, 118)
	_, err = e.svc.CreateRoom(ctx, bob, NewRoom{Name: "x", Kind: store.RoomDirect})
	wantCode(t, "create a direct room by hand", err, 101)

	// Private rooms: no joining, and they look like no room at all.
	_, err = e.svc.Join(ctx, bob, priv.ID)
	wantCode(t, "join a private room", err, 117)
	_, err = e.svc.Join(ctx, bob, 999)
	wantCode(t, "join a missing room", err, 117)
	must(e.svc.Join(ctx, bob, pub.ID))(t)
	must(e.svc.Join(ctx, bob, pub.ID))(t) // idempotent

	// Only admins and owners invite to private rooms.
	must(e.svc.Invite(ctx, alice, priv.ID, "bob"))(t)
	_, err = e.svc.Invite(ctx, bob, priv.ID, "carol")
	wantCode(t, "member invites to a private room", err, 104)
	_, err = e.svc.Invite(ctx, alice, priv.ID, "bob")
	wantCode(t, "invite a member again", err, 118)
	_, err = e.svc.Invite(ctx, alice, priv.ID, "nobody")
	wantCode(t, "invite an unknown user", err, 117)
	must(e.svc.Invite(ctx, bob, pub.ID, "carol"))(t) // any member invites to a public room

	// Roles: only the owner changes them; admins kick members, not admins.
	wantCode(t, "member sets a role", e.svc.SetRole(ctx, bob, priv.ID, "alice", store.RoleMember), 104)
	wantCode(t, "bad role", e.svc.SetRole(ctx, alice, priv.ID, "bob", "boss"), 101)
	if err := e.svc.SetRole(ctx, alice, priv.ID, "bob", store.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	must(e.svc.Invite(ctx, bob, priv.ID, "carol"))(t) // admins invite
	must(e.svc.Invite(ctx, bob, priv.ID, "dan"))(t)
	wantCode(t, "member kicks", e.svc.Kick(ctx, carol, priv.ID, "dan"), 104)
	if err := e.svc.Kick(ctx, bob, priv.ID, "dan"); err != nil {
		t.Fatalf("admin kicks member: %v", err)
	}
	wantCode(t, "admin kicks owner", e.svc.Kick(ctx, bob, priv.ID, "alice"), 104)
	wantCode(t, "kick oneself", e.svc.Kick(ctx, alice, priv.ID, "alice"), 101)
	_, err = e.svc.Messages(ctx, dan, priv.ID, Page{})
	wantCode(t, "kicked user reads", err, 104)

	// Topic: admins and owners.
	wantCode(t, "member sets topic", e.svc.SetTopic(ctx, carol, priv.ID, "x"), 104)
	wantCode(t, "topic with a control character", e.svc.SetTopic(ctx, bob, priv.ID, "a\x07b"), 101)
	if err := e.svc.SetTopic(ctx, bob, priv.ID, "plans"); err != nil {
		t.Fatal(err)
	}
	if r := must(e.st.GetRoom(ctx, priv.ID))(t); r.Topic != "plans" {
		t.Fatalf("topic %q", r.Topic)
	}

	// The last owner cannot leave while others remain.
	wantCode(t, "last owner leaves", e.svc.Leave(ctx, alice, priv.ID), 118)
	wantCode(t, "owner changes own role", e.svc.SetRole(ctx, alice, priv.ID, "alice", store.RoleMember), 118)
	if err := e.svc.Leave(ctx, carol, priv.ID); err != nil {
		t.Fatal(err)
	}

	// Direct rooms: one per pair, nobody leaves, nobody is added.
	d1, created := must2(t)(e.svc.OpenDirect(ctx, alice, "bob"))
	d2, created2 := must2(t)(e.svc.OpenDirect(ctx, bob, "ALICE"))
	if d1.ID != d2.ID || !created || created2 {
		t.Fatalf("direct rooms %d/%d created %v/%v: want one room, created once", d1.ID, d2.ID, created, created2)
	}
	_, _, err = e.svc.OpenDirect(ctx, alice, "alice")
	wantCode(t, "direct with oneself", err, 101)
	wantCode(t, "leave a direct room", e.svc.Leave(ctx, alice, d1.ID), 104)
	_, err = e.svc.Invite(ctx, alice, d1.ID, "carol")
	wantCode(t, "invite to a direct room", err, 104)

	rooms := must(e.svc.MyRooms(ctx, bob))(t)
	if len(rooms) != 3 {
		t.Fatalf("bob's rooms: %d, want 3 (lobby, secret, direct)", len(rooms))
	}
}

func must2(t *testing.T) func(store.Room, bool, error) (store.Room, bool) {
	return func(r store.Room, b bool, err error) (store.Room, bool) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r, b
	}
}

func TestMessagesEditsDeletesReactions(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, sqlite.Options{})
	alice, bob, eve := e.user(t, "alice"), e.user(t, "bob"), e.user(t, "eve")
	r := must(e.svc.CreateRoom(ctx, alice, NewRoom{Name: "team", Kind: store.RoomPrivate}))(t)
	must(e.svc.Invite(ctx, alice, r.ID, "bob"))(t)

	m1 := must(e.svc.Post(ctx, alice, r.ID, "hello\nworld", 0))(t)
	if m1.Seq != 1 || m1.Epoch != r.Epoch {
		t.Fatalf("first message at %+v, want seq 1 in epoch %s", m1, r.Epoch)
	}
	m2 := must(e.svc.Post(ctx, bob, r.ID, "hi alice", m1.Seq))(t)
	_, err := e.svc.Post(ctx, bob, r.ID, "reply to nothing", 99)
	wantCode(t, "reply_to a missing message", err, 117)
	for _, bad := range []string{"", "   ", "bad\x00byte", "\xff\xfe", strings.Repeat("x", MaxMessageText+1)} {
		_, err = e.svc.Post(ctx, bob, r.ID, bad, 0)
		wantCode(t, fmt.Sprintf("post %q", bad), err, 101)
	}
	_, err = e.svc.Post(ctx, eve, r.ID, "let me in", 0)
	wantCode(t, "non-member posts", err, 104)

	_, err = e.svc.Edit(ctx, bob, r.ID, m1.Seq, "hijacked")
	wantCode(t, "edit someone else's message", err, 104)
	must(e.svc.Edit(ctx, alice, r.ID, m1.Seq, "hello, world"))(t)
	must(e.svc.React(ctx, bob, r.ID, m1.Seq, "👍", true))(t)
	_, err = e.svc.React(ctx, bob, r.ID, m1.Seq, "👍", true)
	wantCode(t, "same reaction twice", err, 118)
	_, err = e.svc.React(ctx, bob, r.ID, m1.Seq, "two words", true)
	wantCode(t, "emoji with a space", err, 101)
	_, err = e.svc.Delete(ctx, eve, r.ID, m2.Seq)
	wantCode(t, "non-member deletes", err, 104)
	must(e.svc.Delete(ctx, alice, r.ID, m2.Seq))(t) // the owner moderates
	_, err = e.svc.Edit(ctx, bob, r.ID, m2.Seq, "undo")
	wantCode(t, "edit a deleted message", err, 118)

	ms := must(e.svc.Messages(ctx, bob, r.ID, Page{}))(t)
	if len(ms) != 2 || ms[0].Body != "hello, world" || ms[0].EditedAt.IsZero() || len(ms[0].Reactions) != 1 ||
		!ms[1].Deleted || ms[1].Body != "" || ms[1].ReplyTo != m1.Seq {
		t.Fatalf("materialized messages: %+v", ms)
	}
	// Every change is an event of the log: the channel's history.
	pubs, top, err := e.svc.Events(ctx, bob, r.ID, 0, 0)
	if err != nil || top.Offset != 5 || len(pubs) != 5 {
		t.Fatalf("events: %d pubs, top %+v, err %v; want 5", len(pubs), top, err)
	}
	var ev EventData
	_ = json.Unmarshal(pubs[4].Data, &ev)
	if ev.Type != "delete" || ev.Target != m2.Seq || ev.User != "alice" || pubs[4].Offset != 5 {
		t.Fatalf("last event %s at %d", pubs[4].Data, pubs[4].Offset)
	}
	var first EventData
	_ = json.Unmarshal(pubs[1].Data, &first)
	if first.Text != "" {
		t.Fatalf("a deleted message's text is replayable from the log: %s", pubs[1].Data)
	}
	_, _, err = e.svc.Events(ctx, eve, r.ID, 0, 0)
	wantCode(t, "non-member reads events", err, 104)

	// Pagination.
	page := must(e.svc.Messages(ctx, bob, r.ID, Page{Before: 2, Limit: 10}))(t)
	if len(page) != 1 || page[0].Seq != 1 {
		t.Fatalf("before 2: %+v", page)
	}
	page = must(e.svc.Messages(ctx, bob, r.ID, Page{After: 1, Limit: 10}))(t)
	if len(page) != 1 || page[0].Seq != 2 {
		t.Fatalf("after 1: %+v", page)
	}
	_, err = e.svc.Messages(ctx, bob, r.ID, Page{Before: 2, After: 1})
	wantCode(t, "before and after", err, 101)

	// Receipts and unread counts: alice's own message doesn't count for her.
	rooms := must(e.svc.MyRooms(ctx, alice))(t)
	if rooms[0].Unread != 0 {
		t.Fatalf("alice unread %d, want 0 (bob's message is deleted)", rooms[0].Unread)
	}
	must(e.svc.Post(ctx, alice, r.ID, "one", 0))(t)
	must(e.svc.Post(ctx, alice, r.ID, "two", 0))(t)
	rooms = must(e.svc.MyRooms(ctx, bob))(t)
	if rooms[0].Unread != 3 { // "hello, world", "one", "two"
		t.Fatalf("bob unread %d, want 3", rooms[0].Unread)
	}
	if got := must(e.svc.MarkRead(ctx, bob, r.ID, 6))(t); got != 6 {
		t.Fatalf("receipt %d", got)
	}
	rooms = must(e.svc.MyRooms(ctx, bob))(t)
	if rooms[0].Unread != 1 {
		t.Fatalf("bob unread after reading to 6: %d, want 1", rooms[0].Unread)
	}
	_, err = e.svc.MarkRead(ctx, eve, r.ID, 6)
	wantCode(t, "non-member marks read", err, 104)

	// Search covers only the rooms one is in.
	other := must(e.svc.CreateRoom(ctx, eve, NewRoom{Name: "eves", Kind: store.RoomPrivate}))(t)
	must(e.svc.Post(ctx, eve, other.ID, "hello from eve", 0))(t)
	hits := must(e.svc.Search(ctx, bob, "hello", 0, 10))(t)
	if len(hits) != 1 || hits[0].RoomID != r.ID {
		t.Fatalf("bob searching hello: %+v, want only alice's message", hits)
	}
	_, err = e.svc.Search(ctx, bob, "hello", other.ID, 10)
	wantCode(t, "search a room one is not in", err, 104)
	_, err = e.svc.Search(ctx, bob, " ", 0, 10)
	wantCode(t, "empty query", err, 101)
}

func TestTypingIsNeverStored(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, sqlite.Options{})
	alice, eve := e.user(t, "alice"), e.user(t, "eve")
	r := must(e.svc.CreateRoom(ctx, alice, NewRoom{Name: "t", Kind: store.RoomPublic}))(t)
	sub := &recorder{}
	if err := e.hub.Subscribe(ctx, LiveChannel(r.ID), sub, hub.SubscribeOptions{}, func(protocol.SubscribeResult) {}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Typing(ctx, alice, r.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "non-member types", e.svc.Typing(ctx, eve, r.ID), 104)
	if len(sub.frames) != 1 || !strings.Contains(sub.frames[0], `"type":"typing","user":"alice"`) {
		t.Fatalf("live channel got %q", sub.frames)
	}
	if pos := must(e.st.RoomPosition(ctx, r.ID))(t); pos.Seq != 0 {
		t.Fatalf("typing took seq %d in the room log", pos.Seq)
	}
}

type recorder struct{ frames []string }

func (r *recorder) Info() protocol.ClientInfo { return protocol.ClientInfo{User: "x", Client: "c"} }
func (r *recorder) Deliver(f []byte, _ string, _ int64) {
	r.frames = append(r.frames, string(f))
}

// TestRecoverMoreThanOneReadPage checks that a resume across more events
// than the store returns per read still gets every one, in order, or an
// honest "not recovered": never a silent gap.
func TestRecoverMoreThanOneReadPage(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, sqlite.Options{})
	alice := e.user(t, "alice")
	r := must(e.svc.CreateRoom(ctx, alice, NewRoom{Name: "big", Kind: store.RoomPublic}))(t)
	const n = store.MaxLimit + 5
	for i := range n {
		if _, err := e.st.AppendEvent(ctx, r.ID, store.Event{Kind: store.EventMessage, UserID: alice.ID, Body: fmt.Sprint("m", i)}); err != nil {
			t.Fatal(err)
		}
	}
	pubs, top, ok, err := e.svc.Backend().Since(ctx, RoomChannel(r.ID), r.Epoch, 2, n)
	if err != nil || !ok || top.Offset != n || len(pubs) != n-2 {
		t.Fatalf("since 2: %d pubs ok=%v top=%+v err=%v; want %d", len(pubs), ok, top, err, n-2)
	}
	for i, p := range pubs {
		if p.Offset != uint64(i+3) {
			t.Fatalf("pub %d has offset %d", i, p.Offset)
		}
	}
	// Through the hub: more missed than its recovery limit means reload.
	var res protocol.SubscribeResult
	err = e.hub.Subscribe(ctx, RoomChannel(r.ID), &recorder{}, hub.SubscribeOptions{Recover: true, Since: hub.Position{Epoch: r.Epoch, Offset: 1}},
		func(sr protocol.SubscribeResult) { res = sr })
	if err != nil || res.Recovered || res.Offset != n {
		t.Fatalf("recover %d missed: %+v err %v; want not recovered", n-1, res, err)
	}
	_, _, ok, _ = e.svc.Backend().Since(ctx, RoomChannel(r.ID), "other-epoch", 2, 10)
	if ok {
		t.Fatal("recovery from another epoch must fail")
	}
}

func TestValidation(t *testing.T) {
	for _, ok := range []string{"a", "general", "dev-ops_2", strings.Repeat("r", 64)} {
		if err := ValidateRoomName(ok); err != nil {
			t.Errorf("room name %q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-x", "a b", "a:b", "é", strings.Repeat("r", 65)} {
		if err := ValidateRoomName(bad); err == nil {
			t.Errorf("room name %q accepted", bad)
		}
	}
	// "invoice\u202Efdp.exe" displays as "invoiceexe.pdf": bidi controls
	// in a file name disguise its extension.
	for _, bad := range []string{"", "a/b", `a\b`, "..", "a\nb", strings.Repeat("f", 256), "invoice\u202Efdp.exe", "a\u2066b", "a\u200Fb"} {
		if err := ValidateFileName(bad); err == nil {
			t.Errorf("file name %q accepted", bad)
		}
	}
	for _, ok := range []string{"report.pdf", "photo 1.jpg", "תמונה.png", "写真.jpg"} {
		if err := ValidateFileName(ok); err != nil {
			t.Errorf("file name %q: %v", ok, err)
		}
	}
	if err := ValidateMessageText("line one\n\tline two ✓"); err != nil {
		t.Errorf("multiline text: %v", err)
	}
	if err := ValidateMessageText("a\u2028b"); err == nil {
		t.Error("line separator accepted")
	}
	for in, want := range map[string]int64{"1": 1, "42": 42, "0": 0, "01": 0, "-1": 0, "+1": 0, "1e3": 0, "": 0, "9223372036854775807": 0} {
		got, ok := ParseID(in)
		if got != want || ok != (want != 0) {
			t.Errorf("ParseID(%q) = %d, %v", in, got, ok)
		}
	}
	for ch, want := range map[string]bool{"chat:1": true, "chat:12#live": true, "chat:lobby": false, "chat:1#x": false, "room:1": false, "chat:01": false} {
		if _, _, ok := parseChannel(ch); ok != want {
			t.Errorf("parseChannel(%q) ok=%v", ch, ok)
		}
	}
}

func TestBackendRejectsBadPublications(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, sqlite.Options{})
	alice := e.user(t, "alice")
	r := must(e.svc.CreateRoom(ctx, alice, NewRoom{Name: "p", Kind: store.RoomPublic}))(t)
	ch := RoomChannel(r.ID)
	for data, c := range map[string]int{
		`"just a string"`:                      114,
		`{"type":"shout","text":"x"}`:          114,
		`{"type":"message"}`:                   101,
		`{"type":"edit","text":"x"}`:           101,
		`{"type":"reaction_add","target":1}`:   101,
		`{"type":"delete","target":77}`:        117,
		`{"type":"message","text":"\u0000"}`:   101,
		`{"type":"message","text":"ok","x":1}`: 0, // unknown fields are ignored
	} {
		_, err := e.hub.Publish(ctx, ch, []byte(data), "alice")
		if c == 0 {
			if err != nil {
				t.Errorf("publish %s: %v", data, err)
			}
			continue
		}
		wantCode(t, "publish "+data, err, c)
	}
	_, err := e.hub.Publish(ctx, ch, []byte(`{"type":"message","text":"x"}`), "")
	wantCode(t, "publish without a user (server API)", err, 104)
	_, err = e.hub.Publish(ctx, RoomChannel(r.ID+1), []byte(`{"type":"message","text":"x"}`), "alice")
	wantCode(t, "publish to a missing room", err, 104)
	if pos := must(e.st.RoomPosition(ctx, r.ID))(t); pos.Seq != 1 {
		t.Fatalf("room seq %d after one good publication, want 1: a rejected one took a seq", pos.Seq)
	}
}

// TestTwoOwnersLeavingAtOnceKeepAnOwner (issue 9.12): the service used to
// count owners, then remove, so two owners leaving (or demoting each other)
// at once both passed the count and left the room without an owner.
func TestTwoOwnersLeavingAtOnceKeepAnOwner(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, sqlite.Options{})
	for i := range 20 {
		alice, bob, carol := e.user(t, fmt.Sprintf("alice%d", i)), e.user(t, fmt.Sprintf("bob%d", i)), e.user(t, fmt.Sprintf("carol%d", i))
		room := must(e.svc.CreateRoom(ctx, alice, NewRoom{Name: fmt.Sprintf("r%d", i), Kind: store.RoomPrivate}))(t)
		must(e.svc.Invite(ctx, alice, room.ID, bob.Username))(t)
		must(e.svc.Invite(ctx, alice, room.ID, carol.Username))(t)
		if err := e.svc.SetRole(ctx, alice, room.ID, bob.Username, store.RoleOwner); err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 2)
		if i%2 == 0 {
			go func() { errs <- e.svc.Leave(ctx, alice, room.ID) }()
			go func() { errs <- e.svc.Leave(ctx, bob, room.ID) }()
		} else {
			go func() { errs <- e.svc.SetRole(ctx, alice, room.ID, bob.Username, store.RoleMember) }()
			go func() { errs <- e.svc.SetRole(ctx, bob, room.ID, alice.Username, store.RoleMember) }()
		}
		e1, e2 := <-errs, <-errs
		owners := 0
		for _, m := range must(e.st.ListMembers(ctx, room.ID))(t) {
			if m.Role == store.RoleOwner {
				owners++
			}
		}
		if owners != 1 {
			t.Fatalf("round %d: %d owners left (errors %v, %v), want 1", i, owners, e1, e2)
		}
	}
}
