package perf

import (
	"bytes"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sori-dev/sori/internal/tools/bench"
)

// Fleet is a set of subscriber clients with one reader goroutine each. The
// readers count delivered frames and, between Measure and StopMeasuring,
// record each frame's publish→receive latency from the timestamp the
// publisher embedded in it (see AppendStamp). Counts are flushed to a shared
// counter only when a reader's buffer runs dry, so that counting costs no
// contention per frame.
type Fleet struct {
	Clients []*Client

	delivered atomic.Int64
	latency   atomic.Pointer[bench.Histogram]
	clock     Clock
	wg        sync.WaitGroup
}

// Measure starts recording latencies into a fresh histogram and returns it.
func (f *Fleet) Measure() *bench.Histogram {
	h := new(bench.Histogram)
	f.latency.Store(h)
	return h
}

// StopMeasuring stops recording latencies.
func (f *Fleet) StopMeasuring() { f.latency.Store(nil) }

// Clock gives the nanoseconds since a fixed start, on the monotonic clock, so
// that a publisher and its subscribers in one process agree on time.
type Clock struct{ start time.Time }

// NewClock starts a clock.
func NewClock() Clock { return Clock{start: time.Now()} }

// Now returns the nanoseconds since the clock started.
func (c Clock) Now() int64 { return int64(time.Since(c.start)) }

// stampKey precedes the timestamp in a publication's data.
var stampKey = []byte(`"t":`)

// AppendStamp appends a JSON object {"t":<now>,"p":"<pad>"} to b, padded
// with pad bytes, for the subscribers to measure latency.
func AppendStamp(b []byte, now int64, pad int) []byte {
	b = append(b, `{"t":`...)
	b = strconv.AppendInt(b, now, 10)
	b = append(b, `,"p":"`...)
	for range pad {
		b = append(b, 'x')
	}
	return append(b, `"}`...)
}

// stampOf returns the timestamp AppendStamp put into a frame, or -1.
func stampOf(p []byte) int64 {
	i := bytes.Index(p, stampKey)
	if i < 0 {
		return -1
	}
	var v int64
	for _, c := range p[i+len(stampKey):] {
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + int64(c-'0')
	}
	return v
}

// Start runs one reader per client until its connection ends; latencies are
// measured against clock.
func (f *Fleet) Start(clock Clock) {
	f.clock = clock
	for _, c := range f.Clients {
		f.wg.Add(1)
		go f.read(c)
	}
}

func (f *Fleet) read(c *Client) {
	defer f.wg.Done()
	var n int64
	for {
		p, err := c.Next()
		if err != nil {
			f.delivered.Add(n)
			return
		}
		if h := f.latency.Load(); h != nil {
			if t := stampOf(p); t >= 0 {
				h.Record(time.Duration(f.clock.Now() - t))
			}
		}
		n++
		if c.br.Buffered() == 0 {
			f.delivered.Add(n)
			n = 0
		}
	}
}

// Delivered returns the frames received so far (flushed counts).
func (f *Fleet) Delivered() int64 { return f.delivered.Load() }

// Close closes every client and waits for the readers.
func (f *Fleet) Close() {
	for _, c := range f.Clients {
		_ = c.Close()
	}
	f.wg.Wait()
}
