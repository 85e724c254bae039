package hub

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/protocol"
)

// lateBackend is memBackend whose Append can store a publication and still
// fail (a store whose commit landed after the caller's deadline), and
// answers data "again" as an idempotent retry of the channel's last
// publication. It records the context each Append got.
type lateBackend struct {
	memBackend
	mu       sync.Mutex
	failNext bool
	ctxErr   error
	deadline time.Time
}

var errLate = context.DeadlineExceeded

func (b *lateBackend) Append(ctx context.Context, ch string, p protocol.Publication) (protocol.Publication, string, error) {
	b.mu.Lock()
	b.ctxErr = ctx.Err()
	b.deadline, _ = ctx.Deadline()
	fail := b.failNext
	b.failNext = false
	b.mu.Unlock()
	if string(p.Data) == "again" {
		b.memBackend.mu.Lock()
		defer b.memBackend.mu.Unlock()
		all := b.pubs[ch]
		return all[len(all)-1], b.epoch, ErrDuplicate
	}
	stored, epoch, err := b.memBackend.Append(ctx, ch, p)
	if fail {
		return protocol.Publication{}, "", errLate
	}
	return stored, epoch, err
}

func (b *lateBackend) failNextAppend() {
	b.mu.Lock()
	b.failNext = true
	b.mu.Unlock()
}

// oneNode is a hub without a broker whose "durable" namespace keeps its log
// in a lateBackend, with a subscriber of durable:x.
func oneNode(t *testing.T) (*Hub, *lateBackend, *recorder) {
	t.Helper()
	h := newHub(t, Config{Namespaces: []Namespace{{Name: "durable"}}, RepairAfter: time.Millisecond})
	b := &lateBackend{memBackend: memBackend{epoch: "E", pubs: map[string][]protocol.Publication{}}}
	h.SetBackend("durable", b)
	r := newRecorder("u", "c1")
	if err := h.Subscribe(context.Background(), "durable:x", r, SubscribeOptions{}, func(protocol.SubscribeResult) {}); err != nil {
		t.Fatal(err)
	}
	return h, b, r
}

// A publication whose Append failed after it committed leaves a hole on a
// node without a broker too: the next publication shows it and the hub
// reads it from the log, so the subscriber still gets every offset in
// order (before, the channel's later publications waited for it forever).
func TestHoleRepairedWithoutBroker(t *testing.T) {
	h, b, r := oneNode(t)
	publish := func(data string) error {
		_, err := h.Publish(context.Background(), "durable:x", []byte(data), "u")
		return err
	}
	if err := publish("1"); err != nil {
		t.Fatal(err)
	}
	b.failNextAppend()
	if err := publish("2"); !errors.Is(err, errLate) {
		t.Fatalf("publish with a late commit: %v, want the backend's error", err)
	}
	if err := publish("3"); err != nil {
		t.Fatal(err)
	}
	if got := waitOffsets(t, r, 3); !slices.Equal(got, seq(3)) {
		t.Fatalf("delivered %v, want 1..3", got)
	}
}

// A retry of such a publication comes back as ErrDuplicate: the hub
// delivers the stored publication then, if the subscribers lack it, and
// only then.
func TestDuplicateFillsTheHole(t *testing.T) {
	h, b, r := oneNode(t)
	b.failNextAppend()
	if _, err := h.Publish(context.Background(), "durable:x", []byte("1"), "u"); !errors.Is(err, errLate) {
		t.Fatalf("publish with a late commit: %v", err)
	}
	pos, err := h.Publish(context.Background(), "durable:x", []byte("again"), "u")
	if !errors.Is(err, ErrDuplicate) || pos.Offset != 1 {
		t.Fatalf("retry = %+v, %v; want offset 1 and ErrDuplicate", pos, err)
	}
	if _, err := h.Publish(context.Background(), "durable:x", []byte("again"), "u"); !errors.Is(err, ErrDuplicate) {
		t.Fatal(err)
	}
	if _, err := h.Publish(context.Background(), "durable:x", []byte("2"), "u"); err != nil {
		t.Fatal(err)
	}
	if got := waitOffsets(t, r, 2); !slices.Equal(got, seq(2)) {
		t.Fatalf("delivered %v, want 1 (once, from the retry) and 2", got)
	}
}

// Append gets the caller's deadline but not its cancellation.
func TestAppendKeepsTheCallersDeadline(t *testing.T) {
	h, b, _ := oneNode(t)
	want := time.Now().Add(time.Hour)
	ctx, cancel := context.WithDeadline(context.Background(), want)
	cancel() // the caller went away
	if _, err := h.Publish(ctx, "durable:x", []byte("1"), "u"); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ctxErr != nil || !b.deadline.Equal(want) {
		t.Fatalf("Append's context: err %v, deadline %v; want no error and the caller's deadline %v", b.ctxErr, b.deadline, want)
	}
}
