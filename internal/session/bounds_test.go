package session

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/auth"
	"github.com/sori-dev/sori/internal/clock"
	"github.com/sori-dev/sori/internal/hub"
	"github.com/sori-dev/sori/internal/protocol"
)

// userNode is a node whose users connect with tokens, on a fake clock.
type userNode struct {
	*Node
	hub *hub.Hub
	clk *clock.Fake
	v   *auth.Verifier
}

func newUserNode(t *testing.T, cfg Config, nss ...hub.Namespace) *userNode {
	t.Helper()
	if nss == nil {
		nss = []hub.Namespace{{Name: ""}, {Name: "user", Subscribe: hub.SubscribeUser}}
	}
	h, err := hub.New(hub.Config{Namespaces: nss})
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Now())
	v, err := auth.NewVerifier(auth.VerifierConfig{HMACSecret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Clock = clk
	n := NewNode(cfg, h, v, nil, nil)
	t.Cleanup(func() { n.Close(); h.Close() })
	return &userNode{Node: n, hub: h, clk: clk, v: v}
}

// connect opens a session for user (as the token spells it) and returns it
// with the connect reply drained, or the Disconnect the connect ended with
// (the zero Disconnect when it did not end).
func (un *userNode) connect(t *testing.T, user string) (*Session, *stalledTransport, protocol.Disconnect) {
	t.Helper()
	tr := &stalledTransport{}
	s, refused := un.Accept(tr, "10.0.0.1")
	if s == nil {
		t.Fatal(refused)
	}
	t.Cleanup(func() { s.Closed(protocol.DisconnectNormal) })
	tok, err := un.v.Mint(auth.NewClaims(user, time.Hour, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if d, end := s.Handle([]byte(`{"id":1,"op":"connect","token":"` + tok + `"}`)); end {
		return s, tr, d
	}
	expectReply(t, s, 1)
	return s, tr, protocol.Disconnect{}
}

// errorCode sends cmd and returns the error code of its reply (0 = success).
func errorCode(t *testing.T, s *Session, cmd string) int {
	t.Helper()
	s.Handle([]byte(cmd))
	for _, f := range s.Drain() {
		var r struct {
			ID    *uint64         `json:"id"`
			Error *protocol.Error `json:"error"`
		}
		if err := json.Unmarshal(f.Data, &r); err != nil || r.ID == nil {
			continue // a push
		}
		if r.Error != nil {
			return r.Error.Code
		}
		return 0
	}
	t.Fatalf("no reply to %s", cmd)
	return -1
}

// The command budget is the user's: shared by their connections and not
// refilled by reconnecting (in any case of the user id).
func TestUserCommandBudgetSurvivesReconnect(t *testing.T) {
	un := newUserNode(t, Config{CommandRate: 1, CommandBurst: 5})
	s, _, _ := un.connect(t, "mallory") // the connect takes one
	for i := 0; i < 4; i++ {
		if c := errorCode(t, s, `{"id":2,"op":"ping"}`); c != 0 {
			t.Fatalf("ping %d: error %d", i, c)
		}
	}
	if c := errorCode(t, s, `{"id":2,"op":"ping"}`); c != protocol.ErrRateLimited.Code {
		t.Fatalf("ping over the burst: %d, want 109", c)
	}
	s.Closed(protocol.DisconnectNormal)
	again, _, _ := un.connect(t, "MALLORY")
	if c := errorCode(t, again, `{"id":2,"op":"ping"}`); c != protocol.ErrRateLimited.Code {
		t.Fatalf("after reconnecting: %d, want 109 (the budget must not refill)", c)
	}
	other, _, _ := un.connect(t, "alice")
	if c := errorCode(t, other, `{"id":2,"op":"ping"}`); c != 0 {
		t.Fatalf("another user: %d", c)
	}
	un.clk.Advance(2 * time.Second)
	if c := errorCode(t, again, `{"id":2,"op":"ping"}`); c != 0 {
		t.Fatalf("after the refill time: %d", c)
	}
}

// Subscriptions are bounded per user across connections, and a closed
// connection gives its subscriptions back.
func TestUserSubscriptionBound(t *testing.T) {
	un := newUserNode(t, Config{MaxSubscriptions: 2, MaxUserSubscriptions: 3})
	a, _, _ := un.connect(t, "u")
	b, _, _ := un.connect(t, "U")
	for _, ch := range []string{"a1", "a2"} {
		if c := errorCode(t, a, `{"id":2,"op":"subscribe","channel":"`+ch+`"}`); c != 0 {
			t.Fatalf("subscribe %s: %d", ch, c)
		}
	}
	if c := errorCode(t, b, `{"id":2,"op":"subscribe","channel":"b1"}`); c != 0 {
		t.Fatalf("third subscription: %d", c)
	}
	if c := errorCode(t, b, `{"id":2,"op":"subscribe","channel":"b2"}`); c != protocol.ErrTooManySubs.Code {
		t.Fatalf("fourth subscription across connections: %d, want 108", c)
	}
	if got := un.UserSubscriptions("u"); got != 3 {
		t.Fatalf("UserSubscriptions %d, want 3", got)
	}
	if c := errorCode(t, a, `{"id":2,"op":"unsubscribe","channel":"a1"}`); c != 0 {
		t.Fatal(c)
	}
	if c := errorCode(t, b, `{"id":2,"op":"subscribe","channel":"b2"}`); c != 0 {
		t.Fatalf("after an unsubscribe: %d", c)
	}
	a.Closed(protocol.DisconnectNormal)
	if got := un.UserSubscriptions("u"); got != 2 {
		t.Fatalf("UserSubscriptions %d after closing a connection, want 2", got)
	}
}

// Channels a user creates are bounded (the hub's per-owner bound) and the
// refusal is a numbered error, not an internal one.
func TestUserChannelBound(t *testing.T) {
	h, err := hub.New(hub.Config{Namespaces: []hub.Namespace{{Name: ""}}, MaxOwnerChannels: 2})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := auth.NewVerifier(auth.VerifierConfig{HMACSecret: []byte(strings.Repeat("k", 32))})
	n := NewNode(Config{}, h, v, nil, nil)
	t.Cleanup(func() { n.Close(); h.Close() })
	un := &userNode{Node: n, hub: h, v: v}
	s, _, _ := un.connect(t, "u")
	errorCode(t, s, `{"id":2,"op":"subscribe","channel":"c1"}`)
	errorCode(t, s, `{"id":2,"op":"subscribe","channel":"c2"}`)
	if c := errorCode(t, s, `{"id":2,"op":"subscribe","channel":"c3"}`); c != protocol.ErrTooManySubs.Code {
		t.Fatalf("third channel created: %d, want 108", c)
	}
	if c := errorCode(t, s, `{"id":2,"op":"publish","channel":"c1","data":{}}`); c != 0 {
		t.Fatalf("publish into an existing channel: %d", c)
	}
}

// A user may hold only so many connections.
func TestUserConnectionBound(t *testing.T) {
	un := newUserNode(t, Config{MaxUserConnections: 2})
	un.connect(t, "u")
	un.connect(t, "u")
	if _, _, d := un.connect(t, "U"); d.Code != protocol.DisconnectConnLimit.Code {
		t.Fatalf("third connection: %v, want 4503", d)
	}
	if _, _, d := un.connect(t, "v"); d != (protocol.Disconnect{}) {
		t.Fatalf("another user: %v", d)
	}
}

// A user's sessions are indexed while they live: a closed one leaves the
// index and frees its place under the bound, and the last one's close drops
// the user's entry.
func TestUserSessionsIndex(t *testing.T) {
	un := newUserNode(t, Config{MaxUserConnections: 2})
	a, _, _ := un.connect(t, "u")
	b, _, _ := un.connect(t, "U")
	a.Closed(protocol.DisconnectNormal)
	c, _, d := un.connect(t, "u")
	if d != (protocol.Disconnect{}) {
		t.Fatalf("a connection in the place of a closed one: %v", d)
	}
	if got := un.UserSessions("U"); len(got) != 2 || !slices.Contains(got, b) || !slices.Contains(got, c) {
		t.Fatalf("UserSessions %v, want the two open ones", got)
	}
	b.Closed(protocol.DisconnectNormal)
	c.Closed(protocol.DisconnectNormal)
	if got := un.UserSessions("u"); len(got) != 0 {
		t.Fatalf("UserSessions %v after every close", got)
	}
	un.mu.Lock()
	left := len(un.byUser)
	un.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d users still indexed after every close", left)
	}
}

// A personal channel's owner is the part after the namespace, also in the
// "" namespace (where there is no "ns:" to skip): user "ob" must not get
// "bob"; the comparison ignores case like accounts do.
func TestPersonalChannelOwner(t *testing.T) {
	un := newUserNode(t, Config{}, hub.Namespace{Name: "", Subscribe: hub.SubscribeUser}, hub.Namespace{Name: "user", Subscribe: hub.SubscribeUser})
	ob, _, _ := un.connect(t, "ob")
	bob, _, _ := un.connect(t, "Bob")
	for _, tt := range []struct {
		s    *Session
		ch   string
		want int
	}{
		{ob, "bob", protocol.ErrPermissionDenied.Code},
		{ob, "ob", 0},
		{ob, "ob#tab", 0},
		{bob, "bob", 0},
		{bob, "BOB#x", 0},
		{bob, "user:bob", 0},
		{ob, "user:bob", protocol.ErrPermissionDenied.Code},
		{ob, "user:ob", 0},
	} {
		if c := errorCode(t, tt.s, `{"id":2,"op":"subscribe","channel":"`+tt.ch+`"}`); c != tt.want {
			t.Errorf("%s subscribes %s: %d, want %d", tt.s.User(), tt.ch, c, tt.want)
		}
	}
}

// gateAuthorizer says "member" until revoked; its first CanSubscribe waits
// for the test, so that a kick can land between decision and registration.
type gateAuthorizer struct {
	member  atomic.Bool
	entered chan struct{}
	release chan struct{}
	calls   atomic.Int32
}

func (a *gateAuthorizer) CanSubscribe(context.Context, string, string) error {
	if a.calls.Add(1) == 1 {
		member := a.member.Load() // decided before the kick...
		close(a.entered)
		<-a.release // ...registered after it
		if member {
			return nil
		}
	}
	if !a.member.Load() {
		return protocol.ErrPermissionDenied
	}
	return nil
}

func (a *gateAuthorizer) CanPublish(context.Context, string, string) error { return nil }

// A kick (membership revoked, then Unsubscribe) that lands between a
// subscribe's decision and its registration: the subscribe decides again and
// is refused, and nothing stays registered.
func TestKickBetweenDecisionAndRegistration(t *testing.T) {
	un := newUserNode(t, Config{}, hub.Namespace{Name: ""}, hub.Namespace{Name: "room"})
	a := &gateAuthorizer{entered: make(chan struct{}), release: make(chan struct{})}
	a.member.Store(true)
	un.SetAuthorizer("room", a)
	s, _, _ := un.connect(t, "bob")
	done := make(chan int)
	go func() { done <- errorCode(t, s, `{"id":2,"op":"subscribe","channel":"room:1"}`) }()
	<-a.entered
	a.member.Store(false) // the kick: membership first...
	for _, ss := range un.UserSessions("BOB") {
		ss.Unsubscribe("room:1", 2000, "removed") // ...then the live subscriptions
	}
	close(a.release)
	if c := <-done; c != protocol.ErrPermissionDenied.Code {
		t.Fatalf("subscribe overtaken by a kick: %d, want 104", c)
	}
	if subs := un.hub.Subscribers("room:1"); len(subs) != 0 {
		t.Fatalf("%d subscriptions left after the kick", len(subs))
	}
	if c := errorCode(t, s, `{"id":3,"op":"unsubscribe","channel":"room:1"}`); c != protocol.ErrNotSubscribed.Code {
		t.Fatalf("unsubscribe: %d, want 107", c)
	}
}

// Timers run on the node's clock: connect timeout, heartbeats and token
// expiry fire when the clock passes them, without sleeping.
func TestTimersOnTheNodeClock(t *testing.T) {
	un := newUserNode(t, Config{ConnectTimeout: 10 * time.Second, PingInterval: 20 * time.Second})
	idle := &pingCounter{}
	if s, refused := un.Accept(idle, "10.0.0.2"); s == nil {
		t.Fatal(refused)
	}
	s, tr, _ := un.connect(t, "u")
	un.clk.Advance(10 * time.Second)
	if c := idle.closes(); len(c) != 1 || c[0].Code != protocol.DisconnectConnectTimeout.Code {
		t.Fatalf("idle transport closes %v, want 4504", c)
	}
	if c := tr.closes(); len(c) != 0 {
		t.Fatalf("connected session closed: %v", c)
	}
	before := idle.pings.Load()
	un.clk.Advance(3 * 20 * time.Second)
	if got := idle.pings.Load() - before; got != 3 {
		t.Fatalf("%d pings in 3 intervals, want 3", got)
	}
	un.clk.Advance(time.Hour) // the token's lifetime
	if c := tr.closes(); len(c) != 1 || c[0].Code != protocol.DisconnectTokenExpired.Code {
		t.Fatalf("closes %v after the token expired, want 4003", c)
	}
	_ = s
}

type pingCounter struct {
	stalledTransport
	pings atomic.Int32
}

func (p *pingCounter) Ping() { p.pings.Add(1) }

// An op that passed validation but has no handler fails closed.
func TestUnknownOpFailsClosed(t *testing.T) {
	un := newUserNode(t, Config{})
	s, _, _ := un.connect(t, "u")
	if d, end := s.handleCommand(&Command{ID: 9, Op: "teleport"}); end {
		t.Fatalf("disconnect %v", d)
	}
	fs := s.Drain()
	if len(fs) != 1 || !strings.Contains(string(fs[0].Data), `"code":102`) {
		t.Fatalf("%d frames (%v), want one error 102", len(fs), fs)
	}
}

// A session keeps its token's claims in a compact form (grant): what
// Claims gives back and what the grants allow are the token's.
func TestClaimsKeptAfterConnect(t *testing.T) {
	un := newUserNode(t, Config{}, hub.Namespace{Name: ""}, hub.Namespace{Name: "tok", Subscribe: hub.SubscribeToken},
		hub.Namespace{Name: "srv", Publish: hub.PublishServer})
	now := time.Now().Truncate(time.Second)
	c := auth.NewClaims("Carol", time.Hour, now, "tok:a*")
	c.Publish = []string{"srv:news"}
	gen := int64(7)
	c.Gen = &gen
	tok, err := un.v.Mint(c)
	if err != nil {
		t.Fatal(err)
	}
	s, refused := un.Accept(&stalledTransport{}, "10.0.0.1")
	if s == nil {
		t.Fatal(refused)
	}
	t.Cleanup(func() { s.Closed(protocol.DisconnectNormal) })
	if s.Claims() != nil {
		t.Fatal("claims before connect")
	}
	if d, end := s.Handle([]byte(`{"id":1,"op":"connect","token":"` + tok + `"}`)); end {
		t.Fatal(d)
	}
	expectReply(t, s, 1)
	got := s.Claims()
	if got == nil || got.User() != "Carol" || !got.Issued().Equal(now) || !got.ExpiresAt().Equal(now.Add(time.Hour)) ||
		!slices.Equal(got.Channels, c.Channels) || !slices.Equal(got.Publish, c.Publish) || got.Gen == nil || *got.Gen != 7 {
		t.Fatalf("claims after connect: %+v, want those of the token", got)
	}
	for _, tt := range []struct {
		cmd  string
		want int
	}{
		{`{"id":2,"op":"subscribe","channel":"tok:abc"}`, 0},
		{`{"id":2,"op":"subscribe","channel":"tok:b"}`, protocol.ErrPermissionDenied.Code},
		{`{"id":2,"op":"publish","channel":"srv:news","data":{}}`, 0},
		{`{"id":2,"op":"publish","channel":"srv:other","data":{}}`, protocol.ErrPermissionDenied.Code},
	} {
		if code := errorCode(t, s, tt.cmd); code != tt.want {
			t.Errorf("%s: %d, want %d", tt.cmd, code, tt.want)
		}
	}
}

// Connect timeouts and token expiries run from the node's one deadline
// timer: each session ends at its own deadline, in time order; a refresh
// moves a deadline, a close drops it, and nothing is left behind.
func TestDeadlinesEndEachSessionInTime(t *testing.T) {
	un := newUserNode(t, Config{ConnectTimeout: 10 * time.Second})
	connectWith := func(user string, ttl time.Duration) (*Session, *stalledTransport) {
		tr := &stalledTransport{}
		s, refused := un.Accept(tr, "10.0.0.1")
		if s == nil {
			t.Fatal(refused)
		}
		t.Cleanup(func() { s.Closed(protocol.DisconnectNormal) })
		tok, err := un.v.Mint(auth.NewClaims(user, ttl, un.clk.Now()))
		if err != nil {
			t.Fatal(err)
		}
		if d, end := s.Handle([]byte(`{"id":1,"op":"connect","token":"` + tok + `"}`)); end {
			t.Fatal(d)
		}
		expectReply(t, s, 1)
		return s, tr
	}
	pending := make([]*stalledTransport, 3)
	var gone *Session
	for i := range pending {
		pending[i] = &stalledTransport{}
		s, refused := un.Accept(pending[i], "10.0.0.2")
		if s == nil {
			t.Fatal(refused)
		}
		t.Cleanup(func() { s.Closed(protocol.DisconnectNormal) })
		gone = s
	}
	gone.Closed(protocol.DisconnectNormal) // its connect deadline goes with it
	_, a := connectWith("a", 30*time.Second)
	_, b := connectWith("b", 20*time.Second)
	c, ct := connectWith("c", 25*time.Second)
	tok, err := un.v.Mint(auth.NewClaims("c", time.Minute, un.clk.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if code := errorCode(t, c, `{"id":2,"op":"refresh","token":"`+tok+`"}`); code != 0 {
		t.Fatalf("refresh: %d", code)
	}
	codes := func(trs ...*stalledTransport) []int {
		var out []int
		for _, tr := range trs {
			cl := tr.closes()
			if len(cl) == 0 {
				out = append(out, 0)
			} else {
				out = append(out, cl[0].Code)
			}
		}
		return out
	}
	timeout, expired := protocol.DisconnectConnectTimeout.Code, protocol.DisconnectTokenExpired.Code
	elapsed := time.Duration(0)
	for _, step := range []struct {
		to   time.Duration
		want []int // pending[0], pending[1], the closed one, a, b, c
	}{
		{9 * time.Second, []int{0, 0, 0, 0, 0, 0}},
		{10 * time.Second, []int{timeout, timeout, 0, 0, 0, 0}},
		{20 * time.Second, []int{timeout, timeout, 0, 0, expired, 0}},
		{30 * time.Second, []int{timeout, timeout, 0, expired, expired, 0}},
		{time.Minute, []int{timeout, timeout, 0, expired, expired, expired}},
	} {
		un.clk.Advance(step.to - elapsed)
		elapsed = step.to
		if got := codes(pending[0], pending[1], pending[2], a, b, ct); !slices.Equal(got, step.want) {
			t.Fatalf("at +%v: closes %v, want %v", step.to, got, step.want)
		}
	}
	un.deadlines.mu.Lock()
	left := len(un.deadlines.heap)
	un.deadlines.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d deadlines left after every session ended", left)
	}
}
