package hub

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/protocol"
)

// linkBroker hands node A's publications to node B's hub, as the cluster
// bus does, except those drop says to lose; each is sent dup times.
type linkBroker struct {
	mu   sync.Mutex
	to   *Hub
	drop func(offset uint64) bool
	dup  int
}

func (l *linkBroker) Publish(channel, epoch string, pub protocol.Publication) error {
	l.mu.Lock()
	to, drop, dup := l.to, l.drop, max(l.dup, 1)
	l.mu.Unlock()
	if to == nil || (drop != nil && drop(pub.Offset)) {
		return nil
	}
	for range dup {
		to.HandlePublication(channel, epoch, pub)
	}
	return nil
}

// twoNodes returns hub A (publishing through link) and hub B (subscribed by
// r), sharing one log, as two cluster nodes share the chat store.
func twoNodes(t *testing.T, link *linkBroker) (a *Hub, r *recorder) {
	t.Helper()
	log := &memBackend{epoch: "E", pubs: map[string][]protocol.Publication{}}
	a = newHub(t, Config{Namespaces: []Namespace{{Name: "durable"}}, Broker: link, RepairAfter: time.Millisecond})
	b := newHub(t, Config{Namespaces: []Namespace{{Name: "durable"}}, Broker: &linkBroker{}, RepairAfter: time.Millisecond})
	a.SetBackend("durable", log)
	b.SetBackend("durable", log)
	link.mu.Lock()
	link.to = b
	link.mu.Unlock()
	r = newRecorder("u", "c1")
	if err := b.Subscribe(context.Background(), "durable:x", r, SubscribeOptions{}, func(protocol.SubscribeResult) {}); err != nil {
		t.Fatal(err)
	}
	return a, r
}

// waitOffsets collects r's publication offsets until it has n.
func waitOffsets(t *testing.T, r *recorder, n int) []uint64 {
	t.Helper()
	var got []uint64
	deadline := time.Now().Add(20 * time.Second) // only ends a broken test
	for len(got) < n {
		got = append(got, r.pubOffsets(t)...)
		if time.Now().After(deadline) {
			t.Fatalf("got offsets %v, want %d of them", got, n)
		}
		runtime.Gosched()
	}
	return got
}

func seq(n int) []uint64 {
	var out []uint64
	for i := 1; i <= n; i++ {
		out = append(out, uint64(i))
	}
	return out
}

// A publication committed on A reaches B's subscriber once and in offset
// order, also when the bus delivers it twice.
func TestBrokerDeliversAcrossNodesOnce(t *testing.T) {
	a, r := twoNodes(t, &linkBroker{dup: 2})
	for i := range 20 {
		if _, err := a.Publish(context.Background(), "durable:x", []byte(fmt.Sprint(i)), "u"); err != nil {
			t.Fatal(err)
		}
	}
	if got := waitOffsets(t, r, 20); !slices.Equal(got, seq(20)) {
		t.Fatalf("B delivered %v", got)
	}
}

// Lost bus messages are read from the log once a later publication shows
// the hole: B still delivers every offset, once, in order.
func TestBrokerLossIsRepairedFromTheLog(t *testing.T) {
	lost := map[uint64]bool{3: true, 4: true, 9: true}
	a, r := twoNodes(t, &linkBroker{drop: func(off uint64) bool { return lost[off] }})
	for i := range 10 {
		if _, err := a.Publish(context.Background(), "durable:x", []byte(fmt.Sprint(i)), "u"); err != nil {
			t.Fatal(err)
		}
	}
	if got := waitOffsets(t, r, 10); !slices.Equal(got, seq(10)) {
		t.Fatalf("B delivered %v, want 1..10", got)
	}
}

// Concurrent publishers on A (commits racing back) and a lossy bus: B's
// subscriber sees each offset exactly once, in order.
func TestBrokerConcurrentPublishersLossyBus(t *testing.T) {
	a, r := twoNodes(t, &linkBroker{drop: func(off uint64) bool { return off%7 == 0 }, dup: 1})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 25 {
				if _, err := a.Publish(context.Background(), "durable:x", []byte(fmt.Sprint(g*100+i)), "u"); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	// The last offset's news may be the lost one: one more publication shows
	// the hole, as the next message in a room does.
	if _, err := a.Publish(context.Background(), "durable:x", []byte(`"last"`), "u"); err != nil {
		t.Fatal(err)
	}
	if got := waitOffsets(t, r, 201); !slices.Equal(got, seq(201)) {
		t.Fatalf("B delivered %d offsets, not 1..201 in order", len(got))
	}
}

// A channel without history has no log: another node's publications are
// fanned out as they come, numbered by the receiving node.
func TestBrokerFansOutChannelsWithoutHistory(t *testing.T) {
	link := &linkBroker{}
	a := newHub(t, Config{Namespaces: []Namespace{{Name: ""}}, Broker: link})
	b := newHub(t, Config{Namespaces: []Namespace{{Name: ""}}, Broker: &linkBroker{}})
	link.mu.Lock()
	link.to = b
	link.mu.Unlock()
	r := newRecorder("u", "c1")
	if err := b.Subscribe(context.Background(), "x", r, SubscribeOptions{}, func(protocol.SubscribeResult) {}); err != nil {
		t.Fatal(err)
	}
	b.HandlePublication("nobody-here", "", protocol.Publication{Data: []byte(`1`)}) // creates nothing
	if b.lookChannel("nobody-here") != nil {
		t.Fatal("a bus message created a channel")
	}
	for i := range 5 {
		if _, err := a.Publish(context.Background(), "x", []byte(fmt.Sprint(i)), "u"); err != nil {
			t.Fatal(err)
		}
	}
	if got := waitOffsets(t, r, 5); !slices.Equal(got, seq(5)) {
		t.Fatalf("B delivered %v", got)
	}
}

// The lost news of a channel's *last* publication leaves no hole for a
// later one to show: the position check reads the log's top and delivers
// it. B's subscriber gets offset 10, whose bus message was dropped, with
// nothing published after it.
func TestPositionCheckRepairsALostLastPublication(t *testing.T) {
	link := &linkBroker{drop: func(off uint64) bool { return off == 10 }}
	log := &memBackend{epoch: "E", pubs: map[string][]protocol.Publication{}}
	a := newHub(t, Config{Namespaces: []Namespace{{Name: "durable"}}, Broker: link, SyncEvery: -1})
	b := newHub(t, Config{Namespaces: []Namespace{{Name: "durable"}}, Broker: &linkBroker{}, SyncEvery: time.Millisecond, SyncBatch: 1})
	a.SetBackend("durable", log)
	b.SetBackend("durable", log)
	link.mu.Lock()
	link.to = b
	link.mu.Unlock()
	r := newRecorder("u", "c1")
	// Another subscribed channel, so that the round-robin (one channel a
	// round) has to come round to durable:x.
	other := newRecorder("u", "c2")
	for ch, rec := range map[string]*recorder{"durable:x": r, "durable:y": other} {
		if err := b.Subscribe(context.Background(), ch, rec, SubscribeOptions{}, func(protocol.SubscribeResult) {}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		if _, err := a.Publish(context.Background(), "durable:x", []byte(fmt.Sprint(i)), "u"); err != nil {
			t.Fatal(err)
		}
	}
	if got := waitOffsets(t, r, 10); !slices.Equal(got, seq(10)) {
		t.Fatalf("B delivered %v, want 1..10", got)
	}
}

// trimmedBackend is a memBackend that retains only the last keep
// publications of a channel, as a JetStream history does: Since from
// before them is not ok.
type trimmedBackend struct {
	*memBackend
	keep int
}

func (b trimmedBackend) Since(ctx context.Context, ch, epoch string, off uint64, limit int) ([]protocol.Publication, Position, bool, error) {
	pubs, top, ok, err := b.memBackend.Since(ctx, ch, epoch, off, limit)
	if ok && top.Offset > uint64(b.keep) && off < top.Offset-uint64(b.keep) {
		return nil, top, false, nil // the next one asked for is gone
	}
	return pubs, top, ok, err
}

// resyncRecorder records Resync calls.
type resyncRecorder struct {
	*recorder
	resync chan string
}

func (r resyncRecorder) Resync(channel string) {
	select {
	case r.resync <- channel:
	default:
	}
}

// A node that missed more publications than the log retains (cut off from
// the bus for a while) cannot give its subscribers the channel in order:
// it tells them to resync (the session reconnects them, and they recover
// by position), by the repair path when a later publication shows the
// hole and by the position check when nothing follows. Left alone, they
// waited forever: the node stopped taking the channel's publications.
func TestNodeBehindTheRetainedHistoryResyncsItsSubscribers(t *testing.T) {
	for _, by := range []string{"repair", "position check"} {
		t.Run(by, func(t *testing.T) {
			lost := false
			var mu sync.Mutex
			link := &linkBroker{drop: func(uint64) bool { mu.Lock(); defer mu.Unlock(); return lost }}
			log := trimmedBackend{&memBackend{epoch: "E", pubs: map[string][]protocol.Publication{}}, 5}
			every := time.Duration(-1)
			if by == "position check" {
				every = time.Millisecond
			}
			a := newHub(t, Config{Namespaces: []Namespace{{Name: "durable"}}, Broker: link, SyncEvery: -1})
			b := newHub(t, Config{Namespaces: []Namespace{{Name: "durable"}}, Broker: &linkBroker{}, RepairAfter: time.Millisecond, SyncEvery: every})
			a.SetBackend("durable", log)
			b.SetBackend("durable", log)
			link.mu.Lock()
			link.to = b
			link.mu.Unlock()
			r := resyncRecorder{newRecorder("u", "c1"), make(chan string, 1)}
			if err := b.Subscribe(context.Background(), "durable:x", r, SubscribeOptions{}, func(protocol.SubscribeResult) {}); err != nil {
				t.Fatal(err)
			}
			publish := func(n int) {
				for i := range n {
					if _, err := a.Publish(context.Background(), "durable:x", []byte(fmt.Sprint(i)), "u"); err != nil {
						t.Fatal(err)
					}
				}
			}
			publish(3)
			if got := waitOffsets(t, r.recorder, 3); !slices.Equal(got, seq(3)) {
				t.Fatalf("B delivered %v, want 1..3", got)
			}
			mu.Lock()
			lost = true // B is cut off: 4..12 never reach it, and only 8..12 are retained
			mu.Unlock()
			publish(9)
			if by == "repair" {
				mu.Lock()
				lost = false
				mu.Unlock()
				publish(1) // 13 reaches B and shows the hole
			}
			select {
			case ch := <-r.resync:
				if ch != "durable:x" {
					t.Fatalf("Resync(%q)", ch)
				}
			case <-time.After(20 * time.Second): // only ends a broken test
				t.Fatal("B's subscriber was never told to resync: it would wait forever")
			}
			if got := r.pubOffsets(t); len(got) > 0 {
				t.Fatalf("B delivered %v past the hole it could not fill", got)
			}
		})
	}
}
