package session

import (
	"sync"
	"time"

	"github.com/sori-dev/sori/internal/clock"
	"github.com/sori-dev/sori/internal/protocol"
)

// What a session's deadline ends when it passes.
const (
	deadlineConnect byte = iota + 1 // no connect command yet: 4504
	deadlineExpiry                  // the token expired: 4003
)

// deadlines runs the timed ends of a node's sessions, the connect timeout
// and the token's expiry, from one timer on the node's clock instead of a
// timer per session: a runtime timer and its closure are ~150 bytes that
// every connection with an expiring token kept for its whole life (issue
// 15). A session has at most one deadline at a time (the connect timeout
// until it connects, then its token's expiry), kept in a min-heap by time;
// the session holds its place in the heap (Session.dl).
//
// Concurrency: safe for concurrent use. Lock order: Session.mu, then
// deadlines.mu, a leaf (set and drop may be called with Session.mu held);
// sessions whose deadline passed are ended after mu is released.
type deadlines struct {
	clock clock.Clock

	mu      sync.Mutex
	heap    []deadline
	timer   clock.Timer // armed for armedAt; nil when none is
	armedAt int64
	stopped bool
}

type deadline struct {
	at   int64 // unix nanoseconds
	s    *Session
	kind byte
}

// set gives s the deadline at (replacing the one it had).
func (d *deadlines) set(s *Session, at time.Time, kind byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ns := at.UnixNano()
	if i := s.dl - 1; i >= 0 {
		d.heap[i].at, d.heap[i].kind = ns, kind
		d.fix(int(i))
	} else {
		d.heap = append(d.heap, deadline{at: ns, s: s, kind: kind})
		s.dl = int32(len(d.heap))
		d.up(len(d.heap) - 1)
	}
	d.armLocked()
}

// drop removes s's deadline, if it has one.
func (d *deadlines) drop(s *Session) {
	d.mu.Lock()
	defer d.mu.Unlock()
	i := int(s.dl - 1)
	if i < 0 {
		return
	}
	last := len(d.heap) - 1
	d.swap(i, last)
	d.heap[last] = deadline{}
	d.heap = d.heap[:last]
	s.dl = 0
	if i < last {
		d.fix(i)
	}
	if len(d.heap) == 0 && cap(d.heap) > 1024 {
		d.heap = nil // a burst of connections is over: let its memory go
	}
}

// stop disarms the timer for good (Node.Close).
func (d *deadlines) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}

// armLocked arms the timer for the earliest deadline unless it already is
// armed for it or earlier (it then re-arms itself when it fires).
func (d *deadlines) armLocked() {
	if d.stopped || len(d.heap) == 0 {
		return
	}
	at := d.heap[0].at
	if d.timer != nil {
		if d.armedAt <= at {
			return
		}
		d.timer.Stop()
	}
	d.armedAt = at
	d.timer = d.clock.AfterFunc(time.Duration(at-d.clock.Now().UnixNano()), d.fire)
}

// fire ends the sessions whose deadline passed and re-arms for the next.
func (d *deadlines) fire() {
	d.mu.Lock()
	d.timer = nil
	now := d.clock.Now().UnixNano()
	var due []deadline
	for len(d.heap) > 0 && d.heap[0].at <= now {
		x := d.heap[0]
		due = append(due, x)
		last := len(d.heap) - 1
		d.swap(0, last)
		d.heap[last] = deadline{}
		d.heap = d.heap[:last]
		x.s.dl = 0
		d.down(0)
	}
	d.armLocked()
	d.mu.Unlock()
	for _, x := range due {
		switch x.kind {
		case deadlineConnect:
			if !x.s.isConnected() {
				x.s.Disconnect(protocol.DisconnectConnectTimeout)
			}
		case deadlineExpiry:
			x.s.Disconnect(protocol.DisconnectTokenExpired)
		}
	}
}

func (d *deadlines) swap(i, j int) {
	d.heap[i], d.heap[j] = d.heap[j], d.heap[i]
	d.heap[i].s.dl = int32(i + 1)
	d.heap[j].s.dl = int32(j + 1)
}

func (d *deadlines) fix(i int) {
	if !d.up(i) {
		d.down(i)
	}
}

// up moves entry i towards the root; it reports whether it moved.
func (d *deadlines) up(i int) bool {
	moved := false
	for i > 0 {
		p := (i - 1) / 2
		if d.heap[p].at <= d.heap[i].at {
			break
		}
		d.swap(i, p)
		i, moved = p, true
	}
	return moved
}

func (d *deadlines) down(i int) {
	n := len(d.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		c := l
		if r := l + 1; r < n && d.heap[r].at < d.heap[l].at {
			c = r
		}
		if d.heap[i].at <= d.heap[c].at {
			return
		}
		d.swap(i, c)
		i = c
	}
}
