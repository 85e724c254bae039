package server_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/sori-dev/sori/internal/config"
	"github.com/sori-dev/sori/internal/store/postgres/pgtest"
)

// startCluster starts n nodes on one PostgreSQL schema and one NATS server
// with JetStream, named a, b, c, ….
func startCluster(t *testing.T, n int, mutate func(*config.Config)) []*testServer {
	t.Helper()
	dsn, natsURL := pgtest.Schema(t), startNATS(t)
	var nodes []*testServer
	for i := range n {
		id := string(rune('a' + i))
		nodes = append(nodes, startServer(t, func(c *config.Config) {
			c.Postgres, c.NATS, c.NodeID = dsn, []string{natsURL}, id
			if mutate != nil {
				mutate(c)
			}
		}))
	}
	return nodes
}

// Channels of a namespace with in-memory history on one node ("room:", as
// app: and user:) are logged in JetStream in cluster mode: publications
// made on A and C at once reach a subscriber on B exactly once and in
// offset order; every node answers a resume by (epoch, offset) the same,
// also after the node that published is gone. A channel without history
// is fanned out to every node's subscribers once.
func TestHistoryChannelsCrossNodes(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	a, b, c := nodes[0], nodes[1], nodes[2]
	const ch = "room:lobby"
	sub := connectAs(t, b, "bob", ch)
	first := sub.call(map[string]any{"op": "subscribe", "channel": ch})
	if num(first["offset"]) != 0 {
		t.Fatalf("fresh channel at offset %v", first["offset"])
	}
	const perNode = 20
	var wg sync.WaitGroup
	for _, ts := range []*testServer{a, c} {
		wg.Go(func() {
			for i := range perNode {
				ts.api(t, "/api/publish", map[string]any{"channel": ch, "data": map[string]any{"from": ts.URL, "i": i}}, http.StatusOK)
			}
		})
	}
	wg.Wait()
	var epoch string
	for want := uint64(1); want <= 2*perNode; want++ {
		if got := num(sub.nextPub(ch)["offset"]); got != want {
			t.Fatalf("subscriber on B got offset %d, want %d", got, want)
		}
	}
	_, _, pushes := sub.reply(sub.send(map[string]any{"op": "ping"}))
	for _, m := range pushes {
		if m["push"] == "pub" {
			t.Fatalf("publication delivered twice: %v", m)
		}
	}
	epoch = b.api(t, "/api/history", map[string]any{"channel": ch, "limit": 1}, http.StatusOK)["epoch"].(string)
	resume := func(ts *testServer) string {
		cl := connectAs(t, ts, "carol", ch)
		res := cl.call(map[string]any{"op": "subscribe", "channel": ch, "recover": true, "epoch": epoch, "offset": 0})
		if res["recovered"] != true || num(res["offset"]) != 2*perNode || res["epoch"] != epoch {
			t.Fatalf("resume on %s: %v", ts.URL, res)
		}
		return mustJSON(res["publications"])
	}
	hist := resume(a)
	for _, ts := range []*testServer{b, c} {
		if got := resume(ts); got != hist {
			t.Fatalf("%s answers a resume differently", ts.URL)
		}
	}
	// The publisher A goes away: the history is in JetStream, not in A.
	stopNode(t, a)
	for _, ts := range []*testServer{b, c} {
		if got := resume(ts); got != hist {
			t.Fatalf("%s after A stopped: history changed", ts.URL)
		}
		h := ts.api(t, "/api/history", map[string]any{"channel": ch, "limit": 5}, http.StatusOK)
		if pubs := h["publications"].([]any); len(pubs) != 5 || num(pubs[4].(map[string]any)["offset"]) != 2*perNode {
			t.Fatalf("history on %s: %v", ts.URL, h)
		}
	}
	// A publication on C after A is gone continues the same epoch.
	pos := c.api(t, "/api/publish", map[string]any{"channel": ch, "data": "after"}, http.StatusOK)
	if pos["epoch"] != epoch || num(pos["offset"]) != 2*perNode+1 {
		t.Fatalf("publish on C: %v, want %s/%d", pos, epoch, 2*perNode+1)
	}
	if got := sub.nextPub(ch); num(got["offset"]) != 2*perNode+1 {
		t.Fatalf("B got %v", got)
	}

	// No history: fanned out once to each node's subscribers.
	const plain = "plain"
	subs := []*client{connectAs(t, b, "u1"), connectAs(t, c, "u2")}
	for _, s := range subs {
		s.call(map[string]any{"op": "subscribe", "channel": plain})
	}
	for i := range 3 {
		b.api(t, "/api/publish", map[string]any{"channel": plain, "data": i}, http.StatusOK)
	}
	for _, s := range subs {
		for i := range 3 {
			if got := s.nextPub(plain); fmt.Sprint(got["data"]) != fmt.Sprint(i) {
				t.Fatalf("plain channel: got %v, want data %d", got, i)
			}
		}
		_, _, pushes := s.reply(s.send(map[string]any{"op": "ping"}))
		for _, m := range pushes {
			if m["push"] == "pub" {
				t.Fatalf("plain publication delivered twice: %v", m)
			}
		}
	}
}

// stopNode shuts a node down before the test ends (its cleanup then finds
// it stopped).
func stopNode(t *testing.T, ts *testServer) {
	t.Helper()
	ts.stop(t)
	ts.done <- nil
}
