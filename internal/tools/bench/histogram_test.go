package bench

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketBoundsCoverEveryValueOnce(t *testing.T) {
	for _, v := range []uint64{0, 1, 31, 32, 33, 63, 64, 65, 1000, 1 << 20, 1<<40 + 12345, 1<<63 - 1} {
		i := bucketOf(v)
		if v > bucketHigh(i) || (i > 0 && v <= bucketHigh(i-1)) {
			t.Fatalf("value %d in bucket %d (%d..%d]", v, i, bucketHigh(i-1), bucketHigh(i))
		}
		if v >= 64 && float64(bucketHigh(i)-v) > float64(v)/subCount {
			t.Fatalf("value %d: bucket top %d is more than 1/%d away", v, bucketHigh(i), subCount)
		}
	}
}

func TestQuantilesMatchSortedSample(t *testing.T) {
	var h Histogram
	r := rand.New(rand.NewPCG(1, 2))
	vals := make([]time.Duration, 100000)
	for i := range vals {
		// Log-uniform from 10µs to 1s, like latencies.
		vals[i] = time.Duration(10e3 * float64(uint64(1)<<uint(r.IntN(17))) * (1 + r.Float64()))
		h.Record(vals[i])
	}
	slices.Sort(vals)
	for _, q := range []float64{.5, .9, .99, .999} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := h.Quantile(q)
		if got < exact || float64(got-exact) > float64(exact)/subCount+1 {
			t.Errorf("p%v = %v, exact %v: more than 1/%d above, or below", q*100, got, exact, subCount)
		}
	}
	if h.Max() != vals[len(vals)-1] || h.Count() != uint64(len(vals)) {
		t.Errorf("max %v count %d, want %v %d", h.Max(), h.Count(), vals[len(vals)-1], len(vals))
	}
	var m Histogram
	m.Merge(&h)
	m.Merge(&h)
	if m.Count() != 2*h.Count() || m.Quantile(.99) != h.Quantile(.99) {
		t.Errorf("merge of two copies: count %d p99 %v", m.Count(), m.Quantile(.99))
	}
}
