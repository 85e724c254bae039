package hub

import (
	"sync"
	"time"

	"github.com/sori-dev/sori/internal/protocol"
)

// ring is a channel's in-memory history: the last size publications, each
// stamped with when it was added so that TTL can expire it. Its buffer grows
// with what it holds (a channel with one publication keeps one entry, not
// size) and is freed when everything expired. Not safe for concurrent use;
// the channel's mutex guards it.
type ring struct {
	buf   []entry
	start int // index of the oldest entry
	n     int
	size  int // most entries kept
}

type entry struct {
	pub   protocol.Publication
	at    time.Time
	owner string // charged for len(pub.Data) until the entry leaves
}

func newRing(size int) *ring { return &ring{size: size} }

// add appends e, pushing out the oldest entry when the ring is full; release
// is told about every entry that leaves.
func (r *ring) add(e entry, release func(owner string, bytes int)) {
	if r.size <= 0 {
		release(e.owner, len(e.pub.Data))
		return
	}
	if r.n == len(r.buf) && len(r.buf) < r.size {
		// Grow (doubling, up to size), unrolling the wrap so start is 0.
		nb := make([]entry, min(r.size, max(4, 2*len(r.buf))))
		for i := 0; i < r.n; i++ {
			nb[i] = r.buf[(r.start+i)%len(r.buf)]
		}
		r.buf, r.start = nb, 0
	}
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = e
		r.n++
		return
	}
	old := &r.buf[r.start]
	release(old.owner, len(old.pub.Data))
	*old = e
	r.start = (r.start + 1) % len(r.buf)
}

// expire drops entries older than cutoff, telling release about each.
func (r *ring) expire(cutoff time.Time, release func(owner string, bytes int)) {
	for r.n > 0 && r.buf[r.start].at.Before(cutoff) {
		old := &r.buf[r.start]
		release(old.owner, len(old.pub.Data))
		*old = entry{}
		r.start = (r.start + 1) % len(r.buf)
		r.n--
	}
	if r.n == 0 {
		r.buf, r.start = nil, 0
	}
}

// oldest returns the offset of the oldest kept publication, or 0 when empty.
func (r *ring) oldest() uint64 {
	if r.n == 0 {
		return 0
	}
	return r.buf[r.start].pub.Offset
}

// after returns up to limit publications with offset > off, oldest first
// (limit 0 = all).
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

// last returns the newest limit publications, oldest first (limit 0 = all).
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

// owners counts what each owner (a client's canonical user id) keeps alive in
// the hub: channels it created and bytes of its publications in rings. The
// empty owner (server-side calls) is not counted. Its lock is a leaf: it is
// taken under shard and channel locks and takes no other lock.
type owners struct {
	maxChannels int
	maxBytes    int

	mu  sync.Mutex
	use map[string]*ownerUse // only owners that hold something
}

type ownerUse struct{ channels, bytes int }

func (o *owners) init(maxChannels, maxBytes int) {
	if maxChannels <= 0 {
		maxChannels = 1000
	}
	if maxBytes <= 0 {
		maxBytes = 16 << 20
	}
	o.maxChannels, o.maxBytes = maxChannels, maxBytes
	o.use = map[string]*ownerUse{}
}

// charge adds channels and bytes to owner's use unless that would pass a
// bound; it reports whether it did.
func (o *owners) charge(owner string, channels, bytes int) bool {
	if owner == "" {
		return true
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	u := o.use[owner]
	if u == nil {
		u = &ownerUse{}
	}
	if u.channels+channels > o.maxChannels || u.bytes+bytes > o.maxBytes {
		return false
	}
	u.channels += channels
	u.bytes += bytes
	o.use[owner] = u
	return true
}

func (o *owners) addChannel(owner string) bool      { return o.charge(owner, 1, 0) }
func (o *owners) addBytes(owner string, n int) bool { return o.charge(owner, 0, n) }
func (o *owners) removeChannel(owner string)        { o.uncharge(owner, 1, 0) }
func (o *owners) release(owner string, bytes int)   { o.uncharge(owner, 0, bytes) }

func (o *owners) uncharge(owner string, channels, bytes int) {
	if owner == "" {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	u := o.use[owner]
	if u == nil {
		return
	}
	u.channels -= channels
	u.bytes -= bytes
	if u.channels <= 0 && u.bytes <= 0 {
		delete(o.use, owner)
	}
}

// usage returns what owner holds (for tests and metrics).
func (o *owners) usage(owner string) (channels, bytes int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if u := o.use[owner]; u != nil {
		return u.channels, u.bytes
	}
	return 0, 0
}
