package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/config"
	"github.com/sori-dev/sori/internal/store/postgres/pgtest"
)

// clusterNodes starts nodes sharing one PostgreSQL schema and one embedded
// NATS server (with JetStream), with node ids a, b, c…
func clusterNodes(t *testing.T, n int, mutate func(*config.Config)) []*testServer {
	t.Helper()
	dsn, natsURL := pgtest.Schema(t), startNATS(t)
	var nodes []*testServer
	for i := range n {
		nodes = append(nodes, startServer(t, func(c *config.Config) {
			c.Postgres, c.NATS, c.NodeID = dsn, []string{natsURL}, string(rune('a'+i))
			if mutate != nil {
				mutate(c)
			}
		}))
	}
	return nodes
}

// A mesh call whose two participants are connected to different nodes: the
// call lives on the node of the first joiner, the other node passes its
// participant's rpcs there and its pushes back, and two pion peers
// negotiate through it and exchange video. When the owning node goes, the
// participant left on the other node is told that it left the call
// ("node gone"), and joining again starts the call on a live node.
func TestMeshCallAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("WebRTC end-to-end")
	}
	nodes := clusterNodes(t, 2, nil)
	a, b := nodes[0], nodes[1]
	room, users := chatRoomOf(t, a, "alice", "bob")
	alice := newCallClient(t, connectChat(t, a, users[0]))
	bob := newCallClient(t, connectChat(t, b, users[1]))

	ra := alice.must("call.join", map[string]any{"room": room})
	rb := bob.must("call.join", map[string]any{"room": room})
	if ps := participantsOf(rb); len(ps) != 1 || ps[0]["user"] != "alice" || ps[0]["polite"] != false {
		t.Fatalf("bob (on node b) joined a call without alice (on node a): %v", rb)
	}
	if j := alice.nextCall("joined"); j["participant"].(map[string]any)["user"] != "bob" {
		t.Fatalf("alice's joined push: %v", j)
	}
	// The call's state is the owner's, whichever node is asked.
	st := bob.must("call.status", map[string]any{"room": room})
	if mustJSON(st["participants"]) != `["alice","bob"]` {
		t.Fatalf("call.status on node b: %v", st)
	}

	ap := newMediaPeer(t, "alice", alice, room, ra, false)
	bp := newMediaPeer(t, "bob", bob, room, rb, false)
	bp.setPeer(ra["participant"].(string))
	stopMedia := exchangeVideo(t, ap, bp, 100)
	stopMedia()

	// The owner (a) goes: bob is told he is out of the call, and a new join
	// on b starts the call there.
	stopNode(t, a)
	var left map[string]any
	for deadline := time.After(10 * time.Second); left == nil; {
		select {
		case m := <-bob.pushes:
			// Alice's own "left" (her connection closed with node a) may
			// come first.
			if m["push"] == "call" && m["event"] == "left" && m["participant"].(map[string]any)["user"] == "bob" {
				left = m
			}
		case <-deadline:
			t.Fatal("bob was not told that the call's node is gone")
		}
	}
	if left["participant"].(map[string]any)["id"] != rb["participant"] || left["reason"] != "node gone" {
		t.Fatalf("left push %v, want bob's own participant with reason \"node gone\"", left)
	}
	again := bob.must("call.join", map[string]any{"room": room})
	if len(participantsOf(again)) != 0 {
		t.Fatalf("rejoin after the owner died: %v, want an empty call", again)
	}
}

// An SFU call across nodes: ann joins on node a (which then hosts the call
// and its SFU room), ben and cy on node b; the third join moves the call to
// a's SFU, and ben's and cy's peer connections reach it from the other node
// with the candidates it advertises. Every participant receives the other
// two's video.
func TestSFUCallAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("WebRTC end-to-end")
	}
	nodes := clusterNodes(t, 2, func(c *config.Config) {
		c.MeshLimit = 2
		c.SFUListen = "127.0.0.1:0"
		c.TURNEnabled = false
	})
	a, b := nodes[0], nodes[1]
	room, users := chatRoomOf(t, a, "ann", "ben", "cy")
	ccs := []*callClient{
		newCallClient(t, connectChat(t, a, users[0])),
		newCallClient(t, connectChat(t, b, users[1])),
		newCallClient(t, connectChat(t, b, users[2])),
	}
	var ids []string
	for i, cc := range ccs {
		res := cc.must("call.join", map[string]any{"room": room})
		ids = append(ids, res["participant"].(string))
		if want := map[bool]string{false: "mesh", true: "sfu"}[i == 2]; res["mode"] != want {
			t.Fatalf("join %d: mode %v, want %s", i, res["mode"], want)
		}
	}
	for _, cc := range ccs[:2] {
		if m := cc.nextCall("mode"); m["mode"] != "sfu" {
			t.Fatalf("mode push %v", m)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var clients []*sfuClient
	for i, cc := range ccs {
		c := newSFUClient(t, users[i].name, cc, room)
		c.connect(ctx)
		clients = append(clients, c)
	}
	for i, c := range clients {
		for j, id := range ids {
			if i != j {
				c.waitGot(id, 10) // woken by each packet c counts
			}
		}
	}
}
