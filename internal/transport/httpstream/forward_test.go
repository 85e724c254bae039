package httpstream_test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/sori-dev/sori/internal/session"
	"github.com/sori-dev/sori/internal/transport/httpstream"
)

// twoNodes starts two fallback handlers sharing a route key, each
// advertising its own address, as two nodes of a cluster do.
func twoNodes(t *testing.T) (a, b *env) {
	key := []byte("shared route key")
	a = start(t, session.Config{}, httpstream.Options{RouteKey: key})
	b = start(t, session.Config{}, httpstream.Options{RouteKey: key})
	a.handler.SetAdvertise(strings.TrimPrefix(a.url, "http://"))
	b.handler.SetAdvertise(strings.TrimPrefix(b.url, "http://"))
	return a, b
}

// Every request of a session may reach any node: the long polls, sends and
// SSE streams that land on B are passed to A, which holds the session, and
// the session behaves exactly as if they had reached A.
func TestRequestsReachTheNodeHoldingTheSession(t *testing.T) {
	a, b := twoNodes(t)
	sid := a.open("longpoll", fmt.Sprintf(`{"id":1,"op":"connect","token":%q}`+"\n"+`{"id":2,"op":"subscribe","channel":"room"}`, a.token("alice")))
	if !strings.Contains(sid, "~") {
		t.Fatalf("session id %q names no holder", sid)
	}
	var ack uint64
	if msgs := b.pollUntil(sid, &ack, 2); num(msgs[1]["id"]) != 2 {
		t.Fatalf("poll through B: %v", msgs)
	}
	a.publish("room", 1)
	if msgs := b.pollUntil(sid, &ack, 1); msgs[0]["push"] != "pub" {
		t.Fatalf("publication through B: %v", msgs)
	}
	b.send(sid, `{"id":3,"op":"ping"}`) // through B, answered on A's outbox
	if msgs := a.pollUntil(sid, &ack, 1); num(msgs[0]["id"]) != 3 {
		t.Fatalf("reply to a send through B: %v", msgs)
	}
	if b.handler.Forwarded() < 3 || a.handler.Forwarded() != 0 {
		t.Fatalf("forwarded: A %d, B %d", a.handler.Forwarded(), b.handler.Forwarded())
	}

	// SSE: a stream opened on B streams A's session, and resumes by
	// Last-Event-ID on either node.
	sse := a.open("sse", fmt.Sprintf(`{"id":1,"op":"connect","token":%q}`+"\n"+`{"id":2,"op":"subscribe","channel":"room"}`, a.token("bob")))
	s := b.stream(sse, "")
	s.next()
	if ev := s.next(); num(ev.data["id"]) != 2 {
		t.Fatalf("second event through B: %v", ev.data)
	}
	a.publish("room", 2)
	ev := s.next()
	if ev.data["push"] != "pub" {
		t.Fatalf("publication over SSE through B: %v", ev.data)
	}
	s.drop()
	a.publish("room", 3)
	s2 := a.stream(sse, ev.id)
	if ev := s2.next(); ev.data["push"] != "pub" || num(ev.data["data"].(map[string]any)["n"]) != 3 {
		t.Fatalf("resume on A after a stream through B: %v", ev.data)
	}
}

// A request for a session whose holder is gone gets a 404 that tells the
// client to open a new session; an id whose holder tag is forged, or a
// request already passed on once, is never forwarded.
func TestForwardingRefusals(t *testing.T) {
	a, b := twoNodes(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	gone := "abc" + b.handler.RouteTag(dead) + ".secret"
	resp, body := b.do("GET", httpstream.PathPoll+"?session="+gone, "", nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "gone") {
		t.Fatalf("poll of a session on a dead node: %d %s", resp.StatusCode, body)
	}
	resp, body = b.do("POST", httpstream.PathSend+"?session="+gone, `{"id":1,"op":"ping"}`, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("send to a session on a dead node: %d %s", resp.StatusCode, body)
	}
	before := b.handler.Forwarded()

	sid := a.open("longpoll", fmt.Sprintf(`{"id":1,"op":"connect","token":%q}`, a.token("carol")))
	id, secret, _ := strings.Cut(sid, ".")
	random := id[:strings.Index(id, "~")]
	// A's address under a MAC made with another key.
	other := start(t, session.Config{}, httpstream.Options{RouteKey: []byte("another key")})
	forged := random + other.handler.RouteTag(strings.TrimPrefix(a.url, "http://")) + "." + secret
	if resp, body := b.do("GET", httpstream.PathPoll+"?session="+forged+"&wait=0", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("forged holder: %d %s", resp.StatusCode, body)
	}
	if resp, body := b.do("GET", httpstream.PathPoll+"?session="+sid+"&wait=0", "", map[string]string{httpstream.ForwardedHeader: "1"}); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a request already forwarded once was forwarded again: %d %s", resp.StatusCode, body)
	}
	if got := b.handler.Forwarded(); got != before {
		t.Fatalf("B forwarded %d refused requests", got-before)
	}
}
