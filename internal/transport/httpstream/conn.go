package httpstream

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/session"
)

// entry is one outbound frame with its transport sequence number. Frames stay
// in the outbox until the client acknowledges them (or, once written, until
// the replay budget pushes them out), so a request that dies in flight loses
// nothing: the next one starts after the client's last acknowledged number.
type entry struct {
	seq         uint64
	data        []byte // shared with other subscribers: never modify
	publishedAt int64
}

// conn is one HTTP session: the session.Transport of a session whose
// downstream is a sequence of SSE streams or polls and whose upstream is a
// sequence of POSTs. At most one downstream request is attached at a time; a
// new one replaces (kicks) the previous.
//
// Lock order: handleMu, then mu; never call into the session with mu held
// except Drain (the session's writer side, which takes only its queue lock).
type conn struct {
	h      *Handler
	id     string // public half of the session id
	secret string
	ip     string       // client IP, counted in Handler.perIP while in the registry
	kind   string       // "sse" or "longpoll", fixed at open for metrics
	sess   session.Conn // set by Attach before any use

	// handleMu serializes Session.Handle (the session's single-reader
	// contract) and keeps it from running once the session is closed.
	handleMu     sync.Mutex
	handleClosed bool

	wake   chan struct{}          // capacity 1; an attached downstream on its goroutine waits on it
	parked atomic.Pointer[parked] // the attached downstream when it is parked (park.go)

	mu        sync.Mutex
	out       []entry
	outBytes  int
	seq       uint64        // last sequence number assigned
	written   uint64        // highest sequence number written to any downstream
	floor     uint64        // highest sequence number dropped without an ack
	final     uint64        // sequence number of the disconnect push; 0 while open
	fetched   chan struct{} // made by Close, closed (and nil) once a request took the disconnect push or the client acked it
	finalized bool          // Session.Closed has been called
	closing   bool          // Close was called
	closedAt  time.Time
	lastSeen  time.Time
	gen       uint64        // downstream generation
	kick      chan struct{} // closed to end the attached downstream; nil when none
	ping      bool          // a heartbeat is due on the attached SSE stream
}

// Kind implements session.Transport.
func (c *conn) Kind() string { return c.kind }

// Attach implements session.Attacher: the session is known to the conn before
// any other goroutine can reach the conn through it.
func (c *conn) Attach(s *session.Session) { c.sess = s }

// Wake implements session.Transport.
func (c *conn) Wake() {
	if p := c.parked.Load(); p != nil {
		p.wake()
		return
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Ping implements session.Transport: SSE streams write a comment line; polls
// need none (each poll ends within the poll wait).
func (c *conn) Ping() {
	c.mu.Lock()
	due := c.kick != nil
	c.ping = due
	c.mu.Unlock()
	if due {
		c.Wake()
	}
}

// Close implements session.Transport. The disconnect push is queued after
// every pending frame, so the client learns why, then the session leaves the
// node at once; its last frames stay fetchable for Options.Linger.
func (c *conn) Close(d protocol.Disconnect) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	c.fetched = make(chan struct{})
	c.mu.Unlock()
	// Close may be called from inside Session.Handle (a reply overflowing
	// the queue), which holds handleMu: finish in another goroutine.
	go c.finish(d)
}

func (c *conn) finish(d protocol.Disconnect) {
	c.handleMu.Lock()
	c.handleClosed = true
	c.handleMu.Unlock()
	c.mu.Lock()
	c.pullLocked()
	c.appendLocked(protocol.EncodeDisconnect(d), 0)
	c.final = c.seq
	c.mu.Unlock()
	c.sess.Closed(d)
	c.mu.Lock()
	c.finalized = true
	c.closedAt = time.Now()
	c.mu.Unlock()
	c.Wake()
}

// handle runs one POST body through the session.
func (c *conn) handle(body []byte) (ok bool) {
	c.handleMu.Lock()
	defer c.handleMu.Unlock()
	if c.handleClosed {
		return false
	}
	c.touch()
	if d, end := c.sess.Handle(body); end {
		c.Close(d)
	}
	return true
}

func (c *conn) touch() {
	c.mu.Lock()
	c.lastSeen = time.Now()
	c.mu.Unlock()
}

func (c *conn) appendLocked(data []byte, publishedAt int64) {
	c.seq++
	c.out = append(c.out, entry{seq: c.seq, data: data, publishedAt: publishedAt})
	c.outBytes += len(data)
}

// pullLocked moves the session's queued frames into the outbox. Transport
// control frames (WebSocket ping/pong) have no meaning here and are dropped,
// and nothing may follow the disconnect push.
func (c *conn) pullLocked() {
	frames := c.sess.Drain()
	if len(frames) == 0 {
		c.sess.Idle()
		return
	}
	if c.final != 0 {
		return
	}
	for i := range frames {
		if frames[i].Control == 0 {
			c.appendLocked(frames[i].Data, frames[i].PublishedAt)
		}
	}
}

// ackLocked drops every frame up to and including seq, then trims written
// frames beyond the replay budget (raising the floor below which a resume is
// impossible).
func (c *conn) ackLocked(seq uint64) {
	i := 0
	for i < len(c.out) && c.out[i].seq <= seq {
		c.outBytes -= len(c.out[i].data)
		i++
	}
	for i < len(c.out) && c.outBytes > c.h.opts.ReplayBytes && c.out[i].seq <= c.written {
		c.outBytes -= len(c.out[i].data)
		c.floor = c.out[i].seq
		i++
	}
	if i > 0 {
		n := copy(c.out, c.out[i:])
		clear(c.out[n:])
		c.out = c.out[:n]
	}
}

// resume acknowledges everything up to after and reports whether the client
// can continue from there (false when frames after it were already dropped).
func (c *conn) resume(after uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if after < c.floor || after > c.seq {
		return false
	}
	c.ackLocked(after)
	return true
}

// ack acknowledges frames up to seq (a POST's ack parameter).
func (c *conn) ack(seq uint64) {
	c.mu.Lock()
	if seq <= c.seq {
		c.ackLocked(seq)
	}
	c.mu.Unlock()
}

// attach makes the caller the session's downstream, kicking the previous;
// p is the caller when it is parked, nil when it waits on its goroutine.
func (c *conn) attach(p *parked) (gen uint64, kick <-chan struct{}) {
	c.mu.Lock()
	if c.kick != nil {
		close(c.kick)
	}
	k := make(chan struct{})
	c.kick = k
	c.gen++
	c.lastSeen = time.Now()
	gen = c.gen
	old := c.parked.Swap(p)
	c.mu.Unlock()
	if old != nil {
		old.wake() // a parked request has no goroutine to see its kick
	}
	return gen, k
}

func (c *conn) detach(gen uint64, p *parked) {
	c.mu.Lock()
	if c.gen == gen {
		c.kick = nil
		c.parked.CompareAndSwap(p, nil)
	}
	c.lastSeen = time.Now()
	c.mu.Unlock()
}

// next returns the frames after seq (copied), whether they include the
// final disconnect push, and whether an SSE heartbeat is due.
func (c *conn) next(after uint64, buf []entry) (es []entry, final, ping bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pullLocked()
	es = buf[:0]
	for _, e := range c.out {
		if e.seq > after {
			es = append(es, e)
		}
	}
	if n := len(es); n > 0 && es[n-1].seq > c.written {
		c.written = es[n-1].seq
	}
	final = c.final != 0 && (len(es) > 0 && es[len(es)-1].seq >= c.final || after >= c.final)
	if final && c.fetched != nil {
		close(c.fetched)
		c.fetched = nil
	}
	ping, c.ping = c.ping, false
	// Written frames beyond the budget go now, not only on the next ack:
	// an SSE client that never acks must not grow the outbox without bound.
	c.ackLocked(0)
	return es, final, ping
}

// awaitFetched waits until the client has fetched the disconnect push of a
// closed session, or has not come back for it within grace since its last
// request (it may be gone), or ctx ends. An attached request takes the push
// at once, so only a client between two requests is waited for.
func (c *conn) awaitFetched(ctx context.Context, grace time.Duration) error {
	for {
		c.mu.Lock()
		fetched, attached, deadline := c.fetched, c.kick != nil, c.lastSeen.Add(grace)
		c.mu.Unlock()
		if fetched == nil { // fetched, or the session is not closed
			return nil
		}
		wait := time.Until(deadline)
		if attached {
			wait = grace
		} else if wait <= 0 {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-fetched:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		t.Stop()
	}
}

// gap is the disconnect for a resume whose frames are gone: the client opens
// a new session and recovers its channels by offset.
var gap = protocol.DisconnectSlowConsumer.WithReason("cannot resume the HTTP session: frames were dropped; open a new one and recover")
