package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/protocol"
)

// openCalls connects node id to the NATS server at url and answers call
// requests by echoing who asked what.
func openCalls(t *testing.T, url, id string) (*NATS, *Calls) {
	t.Helper()
	n, err := Connect([]string{url}, id, func(string, string, protocol.Publication) {}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := OpenCalls(ctx, n, func(req CallRequest) CallReply {
		if req.Method == "fail" {
			return CallReply{Code: 117, Error: "no such participant"}
		}
		b, _ := json.Marshal(map[string]string{"owner": id, "from": req.Node + "/" + req.Conn, "user": req.User, "data": string(req.Data)})
		return CallReply{Result: b}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return n, c
}

// One owner per room whatever the races: ten claims from two nodes at once
// all name the same node; a dead owner is taken over by exactly one node;
// requests reach the owner and its answers (results and numbered errors)
// come back; pushes reach the addressed node in the order they were sent;
// a request to a node nobody listens for is ErrOwnerGone.
func TestCallsOwnerForwardAndPush(t *testing.T) {
	url := startJetStream(t).ClientURL()
	_, a := openCalls(t, url, "a")
	nb, b := openCalls(t, url, "b")
	noneDead := func(string) bool { return false }

	for room := range 5 {
		name := fmt.Sprint("room-", room)
		var wg sync.WaitGroup
		got := make([]string, 10)
		for i := range got {
			c := a
			if i%2 == 1 {
				c = b
			}
			wg.Go(func() {
				o, err := c.Owner(context.Background(), name, noneDead)
				if err != nil {
					t.Error(err)
				}
				got[i] = o
			})
		}
		wg.Wait()
		for _, o := range got {
			if o != got[0] || o == "" {
				t.Fatalf("%s: owners %v, want one node", name, got)
			}
		}
	}

	// "ghost" owned a room and is gone: a and b race to take it over; one wins.
	ctx := context.Background()
	if o, err := a.Owner(ctx, "haunted", noneDead); err != nil || o != "a" {
		t.Fatalf("first claim: %q %v", o, err)
	}
	if _, err := a.kv.Put(ctx, roomKey("haunted"), []byte("ghost")); err != nil {
		t.Fatal(err)
	}
	if o, _ := b.Lookup(ctx, "haunted"); o != "ghost" {
		t.Fatalf("Lookup = %q, want ghost", o)
	}
	if o, _ := b.Owner(ctx, "haunted", noneDead); o != "ghost" {
		t.Fatalf("a live owner was taken over: %q", o)
	}
	dead := func(n string) bool { return n == "ghost" }
	var oa, ob string
	var wg sync.WaitGroup
	wg.Go(func() { oa, _ = a.Owner(ctx, "haunted", dead) })
	wg.Go(func() { ob, _ = b.Owner(ctx, "haunted", dead) })
	wg.Wait()
	if oa != ob || (oa != "a" && oa != "b") {
		t.Fatalf("takeover: a says %q, b says %q", oa, ob)
	}
	if _, err := a.Forward(ctx, "ghost", CallRequest{Method: "call.join"}); !errors.Is(err, ErrOwnerGone) {
		t.Fatalf("request to a node nobody listens for: %v, want ErrOwnerGone", err)
	}

	rep, err := a.Forward(ctx, "b", CallRequest{Method: "call.join", Node: "a", Conn: "c1", User: "alice", Data: json.RawMessage(`{"room":"1"}`)})
	if err != nil || rep.Code != 0 || string(rep.Result) != `{"data":"{\"room\":\"1\"}","from":"a/c1","owner":"b","user":"alice"}` {
		t.Fatalf("forwarded request: %+v %v", rep, err)
	}
	if rep, err := a.Forward(ctx, "b", CallRequest{Method: "fail"}); err != nil || rep.Code != 117 || rep.Error != "no such participant" {
		t.Fatalf("forwarded error: %+v %v", rep, err)
	}

	pushes := make(chan string, 100)
	a.OnPush(func(conn string, frame []byte) { pushes <- conn + ":" + string(frame) })
	for i := range 50 {
		if err := b.Push("a", "c1", fmt.Appendf(nil, `{"n":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	_ = nb.Conn().Flush()
	for i := range 50 {
		select {
		case p := <-pushes:
			if want := fmt.Sprintf(`c1:{"n":%d}`, i); p != want {
				t.Fatalf("push %d: %q, want %q", i, p, want)
			}
		case <-time.After(10 * time.Second): // only ends a broken test
			t.Fatalf("push %d never arrived", i)
		}
	}
}
