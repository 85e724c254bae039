package hub

import (
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/protocol"
)

func offsets(pubs []protocol.Publication) []uint64 {
	out := make([]uint64, 0, len(pubs))
	for _, p := range pubs {
		out = append(out, p.Offset)
	}
	return out
}

func equalOffsets(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRing(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name       string
		size       int
		adds       int           // publications 1..adds, one second apart
		expireAt   time.Duration // cutoff relative to t0; 0 = no expiry
		wantOldest uint64
		wantAll    []uint64
		after      uint64
		afterLimit int
		wantAfter  []uint64
		lastLimit  int
		wantLast   []uint64
	}{
		{name: "empty", size: 4, wantAll: []uint64{}, wantAfter: nil, wantLast: []uint64{}},
		{name: "partly filled", size: 4, adds: 3, wantOldest: 1, wantAll: []uint64{1, 2, 3},
			after: 1, wantAfter: []uint64{2, 3}, lastLimit: 2, wantLast: []uint64{2, 3}},
		{name: "exactly full", size: 3, adds: 3, wantOldest: 1, wantAll: []uint64{1, 2, 3},
			after: 0, afterLimit: 2, wantAfter: []uint64{1, 2}, lastLimit: 5, wantLast: []uint64{1, 2, 3}},
		{name: "wrapped twice", size: 3, adds: 8, wantOldest: 6, wantAll: []uint64{6, 7, 8},
			after: 6, wantAfter: []uint64{7, 8}, lastLimit: 1, wantLast: []uint64{8}},
		{name: "after the newest", size: 3, adds: 5, wantOldest: 3, wantAll: []uint64{3, 4, 5},
			after: 5, wantAfter: nil, lastLimit: 0, wantLast: []uint64{3, 4, 5}},
		{name: "expiry drops the oldest", size: 8, adds: 5, expireAt: 3 * time.Second, wantOldest: 3, wantAll: []uint64{3, 4, 5},
			after: 0, wantAfter: []uint64{3, 4, 5}, wantLast: []uint64{3, 4, 5}},
		{name: "expiry of everything", size: 8, adds: 5, expireAt: time.Hour, wantOldest: 0, wantAll: []uint64{},
			wantAfter: nil, wantLast: []uint64{}},
		{name: "zero size keeps nothing", size: 0, adds: 3, wantAll: []uint64{}, wantLast: []uint64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRing(tt.size)
			held := 0 // bytes charged and not yet released
			release := func(owner string, n int) {
				if owner != "o" {
					t.Errorf("released for owner %q", owner)
				}
				held -= n
			}
			for i := 1; i <= tt.adds; i++ {
				held += 10
				r.add(entry{pub: protocol.Publication{Offset: uint64(i), Data: make([]byte, 10)}, at: t0.Add(time.Duration(i) * time.Second), owner: "o"}, release)
			}
			if tt.expireAt > 0 {
				r.expire(t0.Add(tt.expireAt), release)
			}
			if held != 10*r.n {
				t.Errorf("%d bytes charged for %d entries of 10", held, r.n)
			}
			if len(r.buf) > tt.size {
				t.Errorf("buffer of %d entries for a ring of %d", len(r.buf), tt.size)
			}
			if got := r.oldest(); got != tt.wantOldest {
				t.Errorf("oldest %d, want %d", got, tt.wantOldest)
			}
			if got := offsets(r.last(0)); !equalOffsets(got, tt.wantAll) {
				t.Errorf("last(0) %v, want %v", got, tt.wantAll)
			}
			if got := offsets(r.after(tt.after, tt.afterLimit)); !equalOffsets(got, tt.wantAfter) {
				t.Errorf("after(%d, %d) %v, want %v", tt.after, tt.afterLimit, got, tt.wantAfter)
			}
			if got := offsets(r.last(tt.lastLimit)); !equalOffsets(got, tt.wantLast) {
				t.Errorf("last(%d) %v, want %v", tt.lastLimit, got, tt.wantLast)
			}
		})
	}
}

// The ring's buffer grows with what it holds and goes when it is empty: a
// channel with a large history size and one publication keeps one small
// buffer, not size entries.
func TestRingGrowsLazily(t *testing.T) {
	r := newRing(200)
	if r.buf != nil {
		t.Fatal("a new ring allocated a buffer")
	}
	nop := func(string, int) {}
	t0 := time.Unix(1000, 0)
	r.add(entry{pub: protocol.Publication{Offset: 1}, at: t0}, nop)
	if len(r.buf) > 4 {
		t.Fatalf("one publication: buffer of %d entries", len(r.buf))
	}
	for i := 2; i <= 500; i++ {
		r.add(entry{pub: protocol.Publication{Offset: uint64(i)}, at: t0.Add(time.Duration(i) * time.Second)}, nop)
	}
	if len(r.buf) != 200 || r.n != 200 || r.oldest() != 301 {
		t.Fatalf("after 500 adds: buffer %d, n %d, oldest %d; want 200, 200, 301", len(r.buf), r.n, r.oldest())
	}
	if got := offsets(r.last(3)); !equalOffsets(got, []uint64{498, 499, 500}) {
		t.Fatalf("last 3: %v", got)
	}
	r.expire(t0.Add(time.Hour), nop)
	if r.buf != nil || r.n != 0 {
		t.Fatalf("everything expired but the buffer (%d entries) stayed", len(r.buf))
	}
}
