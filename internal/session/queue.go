package session

import "sync"

// Frame is one outbound message waiting to be written.
type Frame struct {
	Data        []byte // shared between subscribers: never modify
	Control     byte   // 0 for a protocol message; otherwise a transport control frame (see Control*)
	PublishedAt int64  // unix nanos when the hub accepted it; 0 if not a publication
	key         string // conflation key
}

// Transport control frames a session may ask its transport to send. Only
// transports with such frames (WebSocket) act on them; others drop them.
const (
	ControlPing byte = 0x9
	ControlPong byte = 0xA
)

// batchLen is the capacity of the frame slices a queue borrows from its
// node's batches: most wakes of a connection carry one to a few frames.
const batchLen = 8

// batches lends the frame slices of busy queues, one per Node: an idle
// connection holds no slice (queue.release), and taking one from here on
// its next wake instead of allocating makes a delivery to an idle
// connection allocate nothing (it was one 448-byte slice per wake, the
// garbage of every fan-out to idle subscribers). The zero value is ready; a
// nil *batches allocates. Safe for concurrent use.
type batches struct{ p sync.Pool }

// get returns an empty slice of capacity batchLen.
func (b *batches) get() []Frame {
	if b != nil {
		if a, ok := b.p.Get().(*[batchLen]Frame); ok {
			return a[:0]
		}
	}
	return make([]Frame, 0, batchLen)
}

// put takes back a slice the queue no longer uses, cleared so that it
// keeps no frame's data alive; slices that grew past batchLen go to the
// garbage collector.
func (b *batches) put(s []Frame) {
	if b == nil || cap(s) != batchLen {
		return
	}
	a := (*[batchLen]Frame)(s[:batchLen])
	clear(a[:])
	b.p.Put(a)
}

// queue is a connection's bounded outbound queue, measured in bytes. Frames
// with a conflation key replace a still-queued frame with the same key, so a
// slow reader of a ticker gets the latest value instead of a backlog.
// It is safe for concurrent use.
type queue struct {
	mu       sync.Mutex
	frames   []Frame
	spare    []Frame // the writer's previous batch, reused to avoid allocations
	bytes    int32   // int32: a session's queue is bounded far below 2 GiB (Config.QueueBytes)
	max      int32
	byKey    map[string]int // index in frames of the queued frame for a key
	disabled bool           // closed: drop everything
}

// push adds f. It returns false, and adds nothing, when the queue would exceed
// its byte limit. It reports whether the queue was empty before (the writer
// then needs waking). An idle queue's first frame goes into a slice from b.
func (q *queue) push(f Frame, b *batches) (ok, wasEmpty bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.disabled {
		return true, false
	}
	if f.key != "" {
		if i, found := q.byKey[f.key]; found {
			q.bytes += int32(len(f.Data) - len(q.frames[i].Data))
			q.frames[i] = f
			return true, false
		}
	}
	if int(q.bytes)+len(f.Data) > int(q.max) && len(q.frames) > 0 {
		return false, false
	}
	if f.key != "" {
		if q.byKey == nil {
			q.byKey = map[string]int{}
		}
		q.byKey[f.key] = len(q.frames)
	}
	wasEmpty = len(q.frames) == 0
	if q.frames == nil {
		// An idle connection holds no slice (see release); starting with
		// room for a few frames saves the 1, 2, 4, 8 regrowth on each wake.
		q.frames = b.get()
	}
	q.frames = append(q.frames, f)
	q.bytes += int32(len(f.Data))
	return true, wasEmpty
}

// drain takes every queued frame. The returned slice is valid until the next
// drain; the caller must not keep it.
func (q *queue) drain() []Frame {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.frames
	clear(q.spare)
	q.frames = q.spare[:0]
	q.spare = out
	q.bytes = 0
	if len(q.byKey) > 0 {
		clear(q.byKey)
	}
	// Do not keep large buffers around for idle connections.
	if cap(q.frames) > 256 {
		q.frames = nil
	}
	return out
}

// release gives the queue's slices back to b when the connection goes
// idle. The writer calls it (Session.Idle) once it is done with the batch
// it drained last, which is q.spare.
func (q *queue) release(b *batches) {
	q.mu.Lock()
	if len(q.frames) == 0 {
		b.put(q.frames)
		b.put(q.spare)
		q.frames, q.spare, q.byKey = nil, nil, nil
	}
	q.mu.Unlock()
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.frames)
}

// disable drops what is queued and refuses further frames. Its slices go
// to the garbage collector, not to a pool: a writer may still be writing
// the batch it drained.
func (q *queue) disable() {
	q.mu.Lock()
	q.disabled = true
	q.frames, q.spare, q.byKey, q.bytes = nil, nil, nil, 0
	q.mu.Unlock()
}
