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
			for i := 1; i <= tt.adds; i++ {
				r.add(protocol.Publication{Offset: uint64(i)}, t0.Add(time.Duration(i)*time.Second))
			}
			if tt.expireAt > 0 {
				r.expire(t0.Add(tt.expireAt))
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
