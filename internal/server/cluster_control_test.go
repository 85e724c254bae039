package server_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/sori-dev/sori/internal/config"
	"github.com/sori-dev/sori/internal/store/postgres/pgtest"
)

// cutProxy forwards TCP connections to target until cut, which closes the
// listener and every forwarded connection: to the node behind it the NATS
// server is gone, while its clients stay connected to it.
type cutProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	cut   bool
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.cut {
				c.Close()
				up.Close()
			}
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(p.Cut)
	return p
}

func (p *cutProxy) URL() string { return "nats://" + p.ln.Addr().String() }

// Cut ends the forwarding for good.
func (p *cutProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
}

// presenceUsers returns the users of a presence answer, sorted.
func presenceUsers(res map[string]any) string {
	var out []string
	for _, c := range res["clients"].([]any) {
		out = append(out, c.(map[string]any)["user"].(string))
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// nextPush returns the next push of kind on channel, skipping others.
func (cl *client) nextPush(kind, channel string) map[string]any {
	cl.t.Helper()
	for {
		m := cl.next()
		if m["push"] == kind && m["channel"] == channel {
			return m
		}
	}
}

// Presence is cluster-wide: join and leave pushes cross nodes, a presence
// question on any node lists the clients of every node, and a node that
// stops beating (here: cut off from NATS, its clients still connected to
// it) has its clients leave on the others within the heartbeat timeout.
// /api/disconnect and /api/unsubscribe act on every node's connections
// before they return.
func TestPresenceAndControlCrossNodes(t *testing.T) {
	dsn, natsURL := pgtest.Schema(t), startNATS(t)
	proxy := newCutProxy(t, strings.TrimPrefix(natsURL, "nats://"))
	var nodes []*testServer
	for i, url := range []string{natsURL, natsURL, proxy.URL()} {
		nodes = append(nodes, startServer(t, func(c *config.Config) {
			c.Postgres, c.NATS, c.NodeID = dsn, []string{url}, string(rune('a'+i))
		}))
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	const ch = "room:p"
	x := connectAs(t, a, "xena", ch)
	x.call(map[string]any{"op": "subscribe", "channel": ch})
	y := connectAs(t, b, "yuri", ch)
	y.call(map[string]any{"op": "subscribe", "channel": ch})
	if j := x.nextPush("join", ch); j["info"].(map[string]any)["user"] != "yuri" {
		t.Fatalf("xena on A got %v, want yuri's join from B", j)
	}
	w := connectAs(t, c, "wanda", ch)
	w.call(map[string]any{"op": "subscribe", "channel": ch})
	for _, cl := range []*client{x, y} {
		if j := cl.nextPush("join", ch); j["info"].(map[string]any)["user"] != "wanda" {
			t.Fatalf("got %v, want wanda's join from C", j)
		}
	}
	for _, ts := range nodes {
		if got := presenceUsers(ts.api(t, "/api/presence", map[string]any{"channel": ch}, http.StatusOK)); got != "wanda,xena,yuri" {
			t.Fatalf("presence on %s: %s", ts.URL, got)
		}
	}
	if got := presenceUsers(y.call(map[string]any{"op": "presence", "channel": ch})); got != "wanda,xena,yuri" {
		t.Fatalf("presence command on B: %s", got)
	}

	// /api/unsubscribe on A ends yuri's subscription on B before it returns.
	if res := a.api(t, "/api/unsubscribe", map[string]any{"user": "yuri", "channel": ch}, http.StatusOK); res == nil {
		t.Fatal("no answer")
	}
	if u := y.nextPush("unsub", ch); num(u["code"]) != 2000 {
		t.Fatalf("yuri got %v", u)
	}
	if l := x.nextPush("leave", ch); l["info"].(map[string]any)["user"] != "yuri" {
		t.Fatalf("xena got %v, want yuri's leave", l)
	}
	// /api/disconnect on C closes yuri's connection on B with 4502.
	c.api(t, "/api/disconnect", map[string]any{"user": "yuri"}, http.StatusOK)
	if ce := y.waitClose(); ce.Code != 4502 {
		t.Fatalf("yuri closed with %v, want 4502", ce)
	}

	// C is cut off from NATS: wanda is still connected to C, but on A she
	// leaves once C missed its heartbeats, and the presence drops her.
	proxy.Cut()
	if l := x.nextPush("leave", ch); l["info"].(map[string]any)["user"] != "wanda" {
		t.Fatalf("xena got %v, want wanda's leave when C went silent", l)
	}
	if got := presenceUsers(a.api(t, "/api/presence", map[string]any{"channel": ch}, http.StatusOK)); got != "xena" {
		t.Fatalf("presence on A after C went silent: %s", got)
	}
	if got := presenceUsers(b.api(t, "/api/presence", map[string]any{"channel": ch}, http.StatusOK)); got != "xena" {
		t.Fatalf("presence on B after C went silent: %s", got)
	}
}

// Live signals cross nodes. A member kicked on A: her live subscription on
// B ends before the kick returns (nothing of the room reaches her after it), and her posts are
// refused on every node, over REST and over the real-time connection.
func TestKickActsOnEveryNode(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	a, b, c := nodes[0], nodes[1], nodes[2]
	alice, bob := signup(t, a.URL, "alice"), signup(t, b.URL, "bob")
	room := alice.call(t, a, "POST", "/api/v1/rooms", map[string]any{"name": "team", "kind": "private"}, http.StatusCreated)
	id, ch := int64(room["id"].(float64)), room["channel"].(string)
	members := fmt.Sprintf("/api/v1/rooms/%d/members", id)
	alice.call(t, a, "POST", members, map[string]any{"username": "bob"}, http.StatusCreated)
	onB, onC := connectChat(t, b, bob), connectChat(t, c, bob)
	onB.call(map[string]any{"op": "subscribe", "channel": ch})
	onC.call(map[string]any{"op": "subscribe", "channel": ch})

	// Live signals (typing) made on A reach bob on B and C, in order,
	// numbered by each node after what it already delivered.
	live := ch + "#live"
	onB.call(map[string]any{"op": "subscribe", "channel": live})
	onC.call(map[string]any{"op": "subscribe", "channel": live})
	for range 3 {
		alice.call(t, a, "POST", fmt.Sprintf("/api/v1/rooms/%d/typing", id), nil, http.StatusOK)
	}
	for _, cl := range []*client{onB, onC} {
		var prev uint64
		for range 3 {
			p := cl.nextPub(live)
			if d := p["data"].(map[string]any); d["type"] != "typing" || d["user"] != "alice" || num(p["offset"]) <= prev {
				t.Fatalf("bob got %v on %s after offset %d", p, live, prev)
			}
			prev = num(p["offset"])
		}
	}

	alice.call(t, a, "DELETE", members+"/bob", nil, http.StatusOK)
	// The kick returned: B and C hold no subscription of bob's any more.
	for _, ts := range []*testServer{b, c} {
		if n := ts.Node().UserSubscriptions("bob"); n != 0 {
			t.Fatalf("%s: bob still has %d subscriptions after the kick returned", ts.URL, n)
		}
	}
	for _, cl := range []*client{onB, onC} {
		if u := cl.nextPush("unsub", ch); num(u["code"]) != 2000 {
			t.Fatalf("bob got %v", u)
		}
	}
	for _, ts := range nodes {
		bob.call(t, ts, "POST", fmt.Sprintf("/api/v1/rooms/%d/messages", id), map[string]any{"text": "still here?"}, http.StatusForbidden)
	}
	for _, cl := range []*client{onB, onC} {
		_, perr, _ := cl.reply(cl.send(map[string]any{"op": "publish", "channel": ch, "data": map[string]any{"type": "message", "text": "hello?"}}))
		if perr == nil {
			t.Fatal("a kicked member published over the real-time connection")
		}
	}
	alice.call(t, a, "POST", fmt.Sprintf("/api/v1/rooms/%d/messages", id), map[string]any{"text": "after"}, http.StatusCreated)
	for _, cl := range []*client{onB, onC} {
		_, _, pushes := cl.reply(cl.send(map[string]any{"op": "ping"}))
		for _, p := range pushes {
			if p["push"] == "pub" && p["channel"] == ch {
				t.Fatalf("the kicked member got %v", p)
			}
		}
	}
}
