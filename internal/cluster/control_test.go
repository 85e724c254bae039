package cluster

import (
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/protocol"
)

// Two nodes on one NATS server: a presence question gets the other node's
// answer, an action broadcast with BroadcastWait has been applied by the
// other node when it returns, and a node that closes is gone at once.
func TestControlAcrossNodes(t *testing.T) {
	url := startNATS(t)
	join := func(id string) *NATS {
		n, err := Connect([]string{url}, id, func(string, string, protocol.Publication) {}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	a, b := join("a"), join("b")
	applied := make(chan Control, 10)
	gone := make(chan string, 10)
	fromB := make(chan Control, 10)
	a.OnControl(ControlHandler{Gone: func(n string) { gone <- n }, Control: func(c Control) { fromB <- c }})
	b.OnControl(ControlHandler{
		Control:  func(c Control) { applied <- c },
		Presence: func(ch string) []protocol.ClientInfo { return []protocol.ClientInfo{{User: "bob", Client: "c1"}} },
	})
	go a.Heartbeats(time.Hour, time.Hour) // one beat now: b learns of a, and answers with its own
	// A node counts another as alive from any message of it, before its
	// handler sees the message: b's presence join reaching a's handler is
	// the event after which a knows b (heartbeat round trip or not).
	b.Broadcast(Control{Kind: KindJoin, Channel: "app:x", Clients: []protocol.ClientInfo{{User: "bob", Client: "c1"}}})
	select {
	case c := <-fromB:
		if c.Kind != KindJoin || c.Origin != "b" {
			t.Fatalf("a got %+v from b", c)
		}
	case <-time.After(20 * time.Second): // only ends a broken test
		t.Fatal("b's broadcast did not reach a")
	}
	if p := a.Peers(); len(p) != 1 || p[0] != "b" {
		t.Fatalf("a's peers after hearing b: %v", p)
	}
	if got := a.GatherPresence("app:x"); len(got) != 1 || got[0].User != "bob" {
		t.Fatalf("gathered %v, want b's bob", got)
	}
	a.BroadcastWait(Control{Kind: KindUnsubscribe, User: "bob", Channel: "app:x"})
	select {
	case c := <-applied:
		if c.Kind != KindUnsubscribe || c.User != "bob" || c.Origin != "a" {
			t.Fatalf("b applied %+v", c)
		}
	default:
		t.Fatal("BroadcastWait returned before b applied the action")
	}
	b.Close()
	select {
	case n := <-gone:
		if n != "b" {
			t.Fatalf("gone %q", n)
		}
	case <-time.After(20 * time.Second): // only ends a broken test
		t.Fatal("a closed node was not declared gone")
	}
	if p := a.Peers(); len(p) != 0 {
		t.Fatalf("peers after b left: %v", p)
	}
}
