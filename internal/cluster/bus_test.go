package cluster

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/sori-dev/sori/internal/protocol"
)

// received collects what a node's handler got, in order.
type received struct {
	ch chan message
}

func newReceived() *received { return &received{ch: make(chan message, 10000)} }

func (r *received) handler(channel, epoch string, pub protocol.Publication) {
	r.ch <- message{Channel: channel, Epoch: epoch, Pub: pub}
}

// next waits for the next delivery; the bound only ends a broken test.
func (r *received) next(t *testing.T) message {
	t.Helper()
	select {
	case m := <-r.ch:
		return m
	case <-time.After(20 * time.Second):
		t.Fatal("no delivery")
		return message{}
	}
}

// none checks that nothing more arrived by the time a marker sent after
// everything else arrives.
func (r *received) noneBefore(t *testing.T, marker string) {
	t.Helper()
	if m := r.next(t); m.Channel != marker {
		t.Fatalf("unexpected delivery %+v before the marker", m)
	}
}

// testBus is the conformance test of a Bus: three nodes; what one publishes
// reaches each other node once, intact and in the publisher's order, and
// never the publisher itself; after Close a node publishes nothing.
func testBus(t *testing.T, join func(t *testing.T, id string, h Handler) Bus) {
	ra, rb, rc := newReceived(), newReceived(), newReceived()
	a, b, c := join(t, "a", ra.handler), join(t, "b", rb.handler), join(t, "c", rc.handler)
	defer b.Close()
	defer c.Close()
	const n = 500
	for i := 1; i <= n; i++ {
		data, _ := json.Marshal(map[string]any{"text": fmt.Sprint("msg ", i), "ü": "ß"})
		if err := a.Publish("chat:1", "ep1", protocol.Publication{Offset: uint64(i), Data: data, User: "alice", Time: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []*received{rb, rc} {
		for i := 1; i <= n; i++ {
			m := r.next(t)
			want := fmt.Sprintf(`{"text":"msg %d","ü":"ß"}`, i)
			if m.Channel != "chat:1" || m.Epoch != "ep1" || m.Pub.Offset != uint64(i) || string(m.Pub.Data) != want ||
				m.Pub.User != "alice" || m.Pub.Time != int64(i) {
				t.Fatalf("delivery %d = %+v %s", i, m, m.Pub.Data)
			}
		}
	}
	// b publishes a marker: a hears it, and it follows nothing of a's own.
	if err := b.Publish("marker", "", protocol.Publication{Offset: 1, Data: json.RawMessage(`1`)}); err != nil {
		t.Fatal(err)
	}
	ra.noneBefore(t, "marker")
	rc.noneBefore(t, "marker")
	a.Close()
	if err := a.Publish("chat:1", "ep1", protocol.Publication{Offset: n + 1, Data: json.RawMessage(`1`)}); err == nil {
		t.Fatal("Publish after Close succeeded")
	}
	if err := c.Publish("marker", "", protocol.Publication{Offset: 2, Data: json.RawMessage(`2`)}); err != nil {
		t.Fatal(err)
	}
	rb.noneBefore(t, "marker")
}

func TestMemBus(t *testing.T) {
	var net MemNet
	testBus(t, func(t *testing.T, id string, h Handler) Bus { return net.Join(id, h) })
}

// startNATS runs an embedded NATS server on a random loopback port.
func startNATS(t *testing.T) string {
	t.Helper()
	s, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s.ClientURL()
}

func TestNATSBus(t *testing.T) {
	url := startNATS(t)
	testBus(t, func(t *testing.T, id string, h Handler) Bus {
		b, err := Connect([]string{url}, id, h, nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

func TestMemNetDrop(t *testing.T) {
	net := MemNet{Drop: func(to, _ string, pub protocol.Publication) bool { return to == "b" && pub.Offset == 2 }}
	rb := newReceived()
	a, b := net.Join("a", func(string, string, protocol.Publication) {}), net.Join("b", rb.handler)
	defer a.Close()
	defer b.Close()
	for i := 1; i <= 3; i++ {
		a.Publish("x", "e", protocol.Publication{Offset: uint64(i)})
	}
	if m1, m3 := rb.next(t), rb.next(t); m1.Pub.Offset != 1 || m3.Pub.Offset != 3 {
		t.Fatalf("got %d then %d, want 1 then 3", m1.Pub.Offset, m3.Pub.Offset)
	}
}
