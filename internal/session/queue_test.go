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
				ok, wasEmpty := q.push(frame(p.data, p.key))
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
			if ok, wasEmpty := q.push(frame("z", "btc")); !ok || !wasEmpty {
				t.Fatalf("push after drain: ok=%v wasEmpty=%v", ok, wasEmpty)
			}
			if ok, _ := q.push(frame("y", "btc")); !ok {
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
	q.push(frame("a", ""))
	first := q.drain()
	q.push(frame("b", ""))
	q.push(frame("c", ""))
	if got := datas(first); got != "a" {
		// the first batch must stay intact until the next drain
		t.Fatalf("first batch changed to %q before the next drain", got)
	}
	if got := datas(q.drain()); got != "b,c" {
		t.Fatalf("second batch %q", got)
	}
	q.release()
	if ok, wasEmpty := q.push(frame("d", "")); !ok || !wasEmpty {
		t.Fatal("push after release")
	}
	if got := datas(q.drain()); got != "d" {
		t.Fatalf("after release: %q", got)
	}
}

func TestQueueDisable(t *testing.T) {
	q := &queue{max: 100}
	q.push(frame("a", ""))
	q.disable()
	if q.len() != 0 {
		t.Fatal("disable kept frames")
	}
	if ok, wasEmpty := q.push(frame("b", "")); !ok || wasEmpty {
		t.Fatalf("push to a disabled queue: ok=%v wasEmpty=%v; want a silent drop that wakes nobody", ok, wasEmpty)
	}
	if len(q.drain()) != 0 {
		t.Fatal("disabled queue handed out frames")
	}
}
