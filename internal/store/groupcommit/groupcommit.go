// Package groupcommit is the batching core shared by the SQLite and
// PostgreSQL stores' writers: callers hand a request to one writer goroutine
// and wait; the writer takes one request, then every request already
// waiting (up to a maximum), commits them together and answers each caller.
// While a batch commits, new callers queue up and form the next batch, so
// the batch size grows with the load by itself and no timer is needed. What
// a commit does is the store's business. It must never import any other
// Sori package.
package groupcommit

import (
	"context"
	"runtime"
)

// Queue hands requests of type Req to one writer (Run) and their results of
// type Res back to the callers (Submit). Submit is safe for concurrent use;
// Run is called once, on the writer's goroutine.
type Queue[Req, Res any] struct {
	in       chan *item[Req, Res] // unbuffered: a request is either taken by the writer or not sent
	closing  <-chan struct{}
	closed   error
	maxBatch int
}

type item[Req, Res any] struct {
	req  Req
	done chan Res // buffered: the writer never blocks on a caller
}

// New returns a Queue whose batches hold at most maxBatch requests (at
// least 1). Once closing is closed, Submit refuses new requests with closed
// and Run commits what was already handed over and returns.
func New[Req, Res any](maxBatch int, closing <-chan struct{}, closed error) *Queue[Req, Res] {
	return &Queue[Req, Res]{in: make(chan *item[Req, Res]), closing: closing, closed: closed, maxBatch: max(1, maxBatch)}
}

// Submit hands req to the writer and waits for its result. It returns an
// error (closed, or ctx's) only when the writer never took req or the
// caller stopped waiting; a request the writer took is committed or not
// as the commit decides (a commit may look at a context carried in req).
func (q *Queue[Req, Res]) Submit(ctx context.Context, req Req) (Res, error) {
	var zero Res
	it := &item[Req, Res]{req: req, done: make(chan Res, 1)}
	select {
	case q.in <- it:
	case <-q.closing:
		return zero, q.closed
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	select {
	case res := <-it.done:
		return res, nil
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// Run is the writer loop. It calls commit with each batch, in the order
// the requests were taken, and answers request i with commit's result i;
// commit must return one result per request. It returns once closing is
// closed and every request handed over before has been committed:
// callers that won the race against closing are committed, later ones get
// the closed error from Submit.
func (q *Queue[Req, Res]) Run(commit func(batch []Req) []Res) {
	items := make([]*item[Req, Res], 0, q.maxBatch)
	reqs := make([]Req, 0, q.maxBatch)
	run := func() {
		reqs = reqs[:0]
		for _, it := range items {
			reqs = append(reqs, it.req)
		}
		results := commit(reqs)
		for i, it := range items {
			it.done <- results[i]
		}
		// Do not keep the batch's requests alive until the next batch.
		clear(reqs)
		clear(items)
	}
	last := 0 // size of the previous batch
	for {
		items = items[:0]
		select {
		case it := <-q.in:
			items = append(items, it)
		case <-q.closing:
			for {
				items = q.takeQueued(items[:0])
				if len(items) == 0 {
					return
				}
				run()
			}
		}
		if last > 1 {
			// Under load, the callers just woken by the previous commit are
			// about to queue again. Yielding once lets them, so the batch
			// takes them all instead of whoever was quickest; when the load
			// is one caller at a time this is skipped and costs nothing.
			runtime.Gosched()
		}
		items = q.takeQueued(items)
		last = len(items)
		run()
	}
}

// takeQueued adds every request already waiting, up to the batch maximum,
// without blocking.
func (q *Queue[Req, Res]) takeQueued(items []*item[Req, Res]) []*item[Req, Res] {
	for len(items) < q.maxBatch {
		select {
		case it := <-q.in:
			items = append(items, it)
		default:
			return items
		}
	}
	return items
}
