package hub

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/sori-dev/sori/internal/protocol"
)

// gatedBackend is memBackend whose Append returns only when the test opens
// the gate of that offset, so the test decides in which order concurrent
// appends of one channel come back to the hub.
type gatedBackend struct {
	memBackend
	mu    sync.Mutex
	gates map[uint64]chan struct{}
}

func newGatedBackend() *gatedBackend {
	return &gatedBackend{memBackend: memBackend{epoch: "E", pubs: map[string][]protocol.Publication{}}, gates: map[uint64]chan struct{}{}}
}

func (b *gatedBackend) gate(off uint64) chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	g, ok := b.gates[off]
	if !ok {
		g = make(chan struct{})
		b.gates[off] = g
	}
	return g
}

func (b *gatedBackend) Append(ctx context.Context, ch string, p protocol.Publication) (protocol.Publication, string, error) {
	stored, epoch, err := b.memBackend.Append(ctx, ch, p)
	<-b.gate(stored.Offset)
	return stored, epoch, err
}

// waitAppended waits until n publications are stored (not yet returned).
func (b *gatedBackend) waitAppended(t *testing.T, ch string, n int) {
	t.Helper()
	for i := 0; ; i++ {
		b.memBackend.mu.Lock()
		got := len(b.pubs[ch])
		b.memBackend.mu.Unlock()
		if got >= n {
			return
		}
		if i > 1e6 {
			t.Fatalf("only %d of %d appends reached the backend", got, n)
		}
		runtime.Gosched()
	}
}

// Appends of one durable channel run concurrently, and a publication that
// commits early still reaches subscribers after every lower offset.
func TestDurableDeliveryInOffsetOrder(t *testing.T) {
	h := newHub(t, Config{Namespaces: []Namespace{{Name: "durable"}}})
	b := newGatedBackend()
	h.SetBackend("durable", b)
	r := newRecorder("u", "c1")
	if err := h.Subscribe(context.Background(), "durable:x", r, SubscribeOptions{}, func(protocol.SubscribeResult) {}); err != nil {
		t.Fatal(err)
	}
	const n = 5
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.Publish(context.Background(), "durable:x", []byte(`{}`), "u"); err != nil {
				t.Error(err)
			}
		}()
	}
	// All n are inside Append at once: the channel lock is not held there.
	b.waitAppended(t, "durable:x", n)
	for _, off := range []uint64{5, 3, 4, 1, 2} { // return in a scrambled order
		close(b.gate(off))
	}
	wg.Wait()
	if got := r.pubOffsets(t); !equalOffsets(got, []uint64{1, 2, 3, 4, 5}) {
		t.Fatalf("delivered offsets %v, want 1..5 in order", got)
	}
}

// A subscriber that recovers a publication still on its way to delivery does
// not get it twice, and the existing subscribers still get it once.
func TestDurableRecoveryDoesNotDuplicateInFlight(t *testing.T) {
	h := newHub(t, Config{Namespaces: []Namespace{{Name: "durable"}}})
	b := newGatedBackend()
	h.SetBackend("durable", b)
	early := newRecorder("u", "early")
	if err := h.Subscribe(context.Background(), "durable:x", early, SubscribeOptions{}, func(protocol.SubscribeResult) {}); err != nil {
		t.Fatal(err)
	}
	close(b.gate(1))
	if _, err := h.Publish(context.Background(), "durable:x", []byte(`{}`), "u"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := h.Publish(context.Background(), "durable:x", []byte(`{}`), "u")
		done <- err
	}()
	b.waitAppended(t, "durable:x", 2) // offset 2 is stored but not yet delivered

	late := newRecorder("u", "late")
	var res protocol.SubscribeResult
	err := h.Subscribe(context.Background(), "durable:x", late, SubscribeOptions{Recover: true, Since: Position{"E", 1}},
		func(r protocol.SubscribeResult) { res = r })
	if err != nil {
		t.Fatal(err)
	}
	if !res.Recovered || !equalOffsets(offsets(res.Publications), []uint64{2}) {
		t.Fatalf("recovery %+v, want offset 2 recovered", res)
	}
	close(b.gate(2))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	close(b.gate(3))
	if _, err := h.Publish(context.Background(), "durable:x", []byte(`{}`), "u"); err != nil {
		t.Fatal(err)
	}
	if got := late.pubOffsets(t); !equalOffsets(got, []uint64{3}) {
		t.Errorf("late subscriber got pushes %v, want only 3 (2 came with its reply)", got)
	}
	if got := early.pubOffsets(t); !equalOffsets(got, []uint64{1, 2, 3}) {
		t.Errorf("early subscriber got %v, want 1, 2, 3", got)
	}
}

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// A durable channel keeps its history in the backend, so it holds no ring:
// 10,000 subscribed chat rooms (history size 200 in memory terms) cost a few
// hundred bytes each, not a 200-entry ring each (16 KiB, 160 MB in all).
func TestDurableChannelsHoldNoRing(t *testing.T) {
	const rooms = 10000
	nss := DefaultNamespaces() // chat: history size 200
	h := newHub(t, Config{Namespaces: nss, MaxOwnerChannels: 2 * rooms})
	h.SetBackend("chat", &memBackend{epoch: "E", pubs: map[string][]protocol.Publication{}})
	r := newRecorder("u", "c")
	ctx := context.Background()
	before := heapInUse()
	for i := 0; i < rooms; i++ {
		if err := h.Subscribe(ctx, fmt.Sprintf("chat:%d", i), r, SubscribeOptions{}, func(protocol.SubscribeResult) {}); err != nil {
			t.Fatal(err)
		}
	}
	per := (int64(heapInUse()) - int64(before)) / rooms
	t.Logf("%d durable channels: %d bytes of heap each", rooms, per)
	if per > 2048 {
		t.Fatalf("each durable channel holds %d bytes of heap; a ring must not be allocated", per)
	}
	for i := 0; i < rooms; i++ {
		h.Unsubscribe(fmt.Sprintf("chat:%d", i), r)
	}
}
