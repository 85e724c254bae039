package session

import (
	"strings"
	"testing"
)

func frame(s, key string) Frame { return Frame{Data: []byte(s), key: key} }

func datas(fs []Frame) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = string(f.Data)
	}
	return strings.Join(parts, ",")
}

func TestQueue(t *testing.T) {
	type push struct {
		data, key    string
		wantOK       bool
		wantWasEmpty bool
	}
	tests := []struct {
		name      string
		max       int
		pushes    []push
		wantDrain string
	}{
		{"first push wakes", 100, []push{{"a", "", true, true}, {"b", "", true, false}}, "a,b"},
		{"byte cap refuses the overflowing frame", 10, []push{
			{"12345", "", true, true}, {"12345", "", true, false}, {"1", "", false, false}}, "12345,12345"},
		{"a frame larger than the cap fits an empty queue", 4, []push{{"123456", "", true, true}, {"x", "", false, false}}, "123456"},
		{"conflation replaces in place", 100, []push{
			{"p1", "btc", true, true}, {"other", "", true, false}, {"p2", "btc", true, false}, {"e1", "eth", true, false}, {"p3", "btc", true, false}},
			"p3,other,e1"},
		{"conflation never overflows on a replacement", 6, []push{{"aaa", "k", true, true}, {"bbb", "", true, false}, {"ccc", "k", true, false}}, "ccc,bbb"},
		{"replacement accounts bytes", 6, []push{{"a", "k", true, true}, {"bbbb", "k", true, false}, {"ccc", "", false, false}}, "bbbb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &queue{max: int32(tt.max)}
			for i, p := range tt.pushes {
				ok, wasEmpty := q.push(frame(p.data, p.key), nil)
				if ok != p.wantOK || wasEmpty != p.wantWasEmpty {
					t.Fatalf("push %d (%q): ok=%v wasEmpty=%v, want %v %v", i, p.data, ok, wasEmpty, p.wantOK, p.wantWasEmpty)
				}
			}
			if got := datas(q.drain()); got != tt.wantDrain {
				t.Fatalf("drained %q, want %q", got, tt.wantDrain)
			}
			if q.len() != 0 {
				t.Fatal("queue not empty after drain")
			}
			// After a drain the byte count and conflation keys start over.
			if ok, wasEmpty := q.push(frame("z", "btc"), nil); !ok || !wasEmpty {
				t.Fatalf("push after drain: ok=%v wasEmpty=%v", ok, wasEmpty)
			}
			if ok, _ := q.push(frame("y", "btc"), nil); !ok {
				t.Fatal("conflating push after drain refused")
			}
			if got := datas(q.drain()); got != "y" {
				t.Fatalf("second drain %q, want y (a stale key index survived the drain)", got)
			}
		})
	}
}

func TestQueueDrainReusesBatches(t *testing.T) {
	q := &queue{max: 1 << 20}
	q.push(frame("a", ""), nil)
	first := q.drain()
	q.push(frame("b", ""), nil)
	q.push(frame("c", ""), nil)
	if got := datas(first); got != "a" {
		// the first batch must stay intact until the next drain
		t.Fatalf("first batch changed to %q before the next drain", got)
	}
	if got := datas(q.drain()); got != "b,c" {
		t.Fatalf("second batch %q", got)
	}
	q.release(nil)
	if ok, wasEmpty := q.push(frame("d", ""), nil); !ok || !wasEmpty {
		t.Fatal("push after release")
	}
	if got := datas(q.drain()); got != "d" {
		t.Fatalf("after release: %q", got)
	}
}

func TestQueueDisable(t *testing.T) {
	q := &queue{max: 100}
	q.push(frame("a", ""), nil)
	q.disable()
	if q.len() != 0 {
		t.Fatal("disable kept frames")
	}
	if ok, wasEmpty := q.push(frame("b", ""), nil); !ok || wasEmpty {
		t.Fatalf("push to a disabled queue: ok=%v wasEmpty=%v; want a silent drop that wakes nobody", ok, wasEmpty)
	}
	if len(q.drain()) != 0 {
		t.Fatal("disabled queue handed out frames")
	}
}

// wake is one wake of an idle connection as a fan-out makes it: a
// publication queued, the writer draining it, then finding the queue empty
// and letting the connection go idle (Session.Idle).
func wake(s *Session, frame []byte) bool {
	s.Deliver(frame, "", 1)
	ok := len(s.Drain()) == 1
	s.Idle()
	return ok
}

// BenchmarkSessionWake measures one wake (see wake): allocs/op is what a
// delivery to an idle connection allocates in the session.
func BenchmarkSessionWake(b *testing.B) {
	n, _ := newNode(b, Config{})
	s, _ := connected(b, n, "192.0.2.1")
	s.Idle()
	frame := []byte(`{"push":"pub","channel":"c","data":{}}`)
	b.ReportAllocs()
	for b.Loop() {
		if !wake(s, frame) {
			b.Fatal("the publication was not drained")
		}
	}
}

// TestWakeAllocatesNothing: a delivery to an idle connection takes its
// frame slice from the node's batches and gives it back when the writer
// goes idle, instead of allocating one per wake (448 B before).
func TestWakeAllocatesNothing(t *testing.T) {
	if raceOn {
		t.Skip("allocation counts are checked without -race")
	}
	n, _ := newNode(t, Config{})
	s, _ := connected(t, n, "192.0.2.1")
	s.Idle()
	frame := []byte(`{"push":"pub","channel":"c","data":{}}`)
	drained := true
	allocs := testing.AllocsPerRun(200, func() { drained = wake(s, frame) && drained })
	if !drained {
		t.Fatal("a publication was not drained")
	}
	if allocs != 0 {
		t.Fatalf("%.1f allocations per wake, want 0", allocs)
	}
}

// TestBatchesKeepNoData: a slice given back to the batches holds no frame,
// so a pooled slice keeps no publication's data alive.
func TestBatchesKeepNoData(t *testing.T) {
	var b batches
	s := append(b.get(), frame("payload", "key"), frame("more", ""))
	b.put(s)
	for i, f := range b.get()[:batchLen] {
		if f.Data != nil || f.key != "" {
			t.Fatalf("slot %d of a lent slice still holds %q/%q", i, f.Data, f.key)
		}
	}
	// A slice that grew past batchLen is not taken back.
	big := make([]Frame, 0, 2*batchLen)
	b.put(big)
	if got := b.get(); cap(got) != batchLen {
		t.Fatalf("lent a slice of capacity %d, want %d", cap(got), batchLen)
	}
}
