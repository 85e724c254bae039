package hub

import (
	"time"

	"github.com/sori-dev/sori/internal/protocol"
)

// ring is a channel's in-memory history: the last size publications, each
// stamped with when it was added so that TTL can expire it. Not safe for
// concurrent use; the channel's mutex guards it.
type ring struct {
	buf   []entry
	start int // index of the oldest entry
	n     int
}

type entry struct {
	pub protocol.Publication
	at  time.Time
}

func newRing(size int) *ring { return &ring{buf: make([]entry, size)} }

func (r *ring) add(p protocol.Publication, at time.Time) {
	if len(r.buf) == 0 {
		return
	}
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = entry{p, at}
		r.n++
		return
	}
	r.buf[r.start] = entry{p, at}
	r.start = (r.start + 1) % len(r.buf)
}

// expire drops entries older than cutoff.
func (r *ring) expire(cutoff time.Time) {
	for r.n > 0 && r.buf[r.start].at.Before(cutoff) {
		r.buf[r.start] = entry{}
		r.start = (r.start + 1) % len(r.buf)
		r.n--
	}
}

// oldest returns the offset of the oldest kept publication, or 0 when empty.
func (r *ring) oldest() uint64 {
	if r.n == 0 {
		return 0
	}
	return r.buf[r.start].pub.Offset
}

// after returns up to limit publications with offset > off, oldest first.
func (r *ring) after(off uint64, limit int) []protocol.Publication {
	var out []protocol.Publication
	for i := 0; i < r.n; i++ {
		e := &r.buf[(r.start+i)%len(r.buf)]
		if e.pub.Offset <= off {
			continue
		}
		if limit > 0 && len(out) == limit {
			break
		}
		out = append(out, e.pub)
	}
	return out
}

// last returns the newest limit publications, oldest first.
func (r *ring) last(limit int) []protocol.Publication {
	skip := 0
	if limit > 0 && r.n > limit {
		skip = r.n - limit
	}
	out := make([]protocol.Publication, 0, r.n-skip)
	for i := skip; i < r.n; i++ {
		out = append(out, r.buf[(r.start+i)%len(r.buf)].pub)
	}
	return out
}
