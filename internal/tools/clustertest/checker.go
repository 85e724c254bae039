package clustertest

import (
	"fmt"
	"sort"
	"sync"
)

// History records what writers were told and what readers received on one
// channel. It is safe for concurrent use.
type History struct {
	mu      sync.Mutex
	acked   map[uint64]string // offset -> payload, from publish replies
	ackedBy map[string]uint64 // payload -> offset
	unsure  map[string]bool   // payloads whose publish got an error or no reply
	refused map[string]bool   // of those, payloads the server answered with an error
	readers map[string]*readerLog
	errs    []string
}

type readerLog struct {
	epoch  string
	last   uint64
	got    map[uint64]string
	epochs int // epoch changes seen (a durable channel has none)
}

// NewHistory returns an empty history.
func NewHistory() *History {
	return &History{acked: map[uint64]string{}, ackedBy: map[string]uint64{}, unsure: map[string]bool{}, refused: map[string]bool{}, readers: map[string]*readerLog{}}
}

// Acked records a publish that the server confirmed at offset.
func (h *History) Acked(offset uint64, payload string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if p, ok := h.acked[offset]; ok && p != payload {
		h.errs = append(h.errs, fmt.Sprintf("offset %d acknowledged twice: %q and %q", offset, p, payload))
	}
	h.acked[offset] = payload
	h.ackedBy[payload] = offset
}

// Unsure records a publish that failed or whose reply never came: it may
// appear at most once.
func (h *History) Unsure(payload string) {
	h.mu.Lock()
	h.unsure[payload] = true
	h.mu.Unlock()
}

// MaxAcked returns the highest acknowledged offset.
func (h *History) MaxAcked() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var m uint64
	for o := range h.acked {
		m = max(m, o)
	}
	return m
}

// AckedCount returns how many publications were acknowledged.
func (h *History) AckedCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.acked)
}

// Refused records a publish the server answered with an error: like
// Unsure for the checks; Uncertain counts those that were committed anyway.
func (h *History) Refused(payload string) {
	h.mu.Lock()
	h.unsure[payload] = true
	h.refused[payload] = true
	h.mu.Unlock()
}

// Uncertain returns how many publishes got no answer or an error, and how
// many of those a reader received all the same (committed, but the writer
// was never told: allowed, once), and how many of those the server had
// answered with an error.
func (h *History) Uncertain() (unsure, committed, refusedCommitted int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := map[string]bool{}
	for _, r := range h.readers {
		for _, p := range r.got {
			seen[p] = true
		}
	}
	for p := range h.unsure {
		if _, acked := h.ackedBy[p]; acked {
			continue
		}
		unsure++
		if seen[p] {
			committed++
			if h.refused[p] {
				refusedCommitted++
			}
		}
	}
	return unsure, committed, refusedCommitted
}

// Subscribed records a reader's subscribe reply: the epoch it is at and
// whether its position was recovered. from is the position the reader
// asked to resume after (its last offset).
func (h *History) Subscribed(reader, epoch string, recovered bool, resumed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.reader(reader)
	if r.epoch != "" && r.epoch != epoch {
		r.epochs++
		h.errs = append(h.errs, fmt.Sprintf("reader %s: epoch changed %s -> %s on a durable channel", reader, r.epoch, epoch))
	}
	if resumed && !recovered {
		h.errs = append(h.errs, fmt.Sprintf("reader %s: resume after offset %d answered recovered:false", reader, r.last))
	}
	r.epoch = epoch
}

func (h *History) reader(name string) *readerLog {
	r := h.readers[name]
	if r == nil {
		r = &readerLog{got: map[uint64]string{}}
		h.readers[name] = r
	}
	return r
}

// Delivered records a publication a reader received (in a subscribe reply's
// recovered list or as a push). It returns the reader's last offset.
func (h *History) Delivered(reader string, offset uint64, payload string) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.reader(reader)
	switch {
	case offset <= r.last:
		h.errs = append(h.errs, fmt.Sprintf("reader %s: offset %d delivered again (last %d)", reader, offset, r.last))
	case offset != r.last+1:
		h.errs = append(h.errs, fmt.Sprintf("reader %s: offsets jump %d -> %d (a hole)", reader, r.last, offset))
		r.last = offset
	default:
		r.last = offset
	}
	if _, dup := r.got[offset]; !dup {
		r.got[offset] = payload
	}
	return r.last
}

// Last returns a reader's last delivered offset.
func (h *History) Last(reader string) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reader(reader).last
}

// Lasts describes every reader's last delivered offset.
func (h *History) Lasts() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	names := make([]string, 0, len(h.readers))
	for n := range h.readers {
		names = append(names, n)
	}
	sort.Strings(names)
	out := ""
	for _, n := range names {
		out += fmt.Sprintf("%s at %d; ", n, h.readers[n].last)
	}
	return out
}

// Position returns a reader's epoch and last offset, for a resume.
func (h *History) Position(reader string) (string, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.reader(reader)
	return r.epoch, r.last
}

// Check returns every violation of the invariants, each as a sentence:
// (a) every acknowledged publication was delivered to every reader exactly
// once, at its acknowledged offset; (b) readers agree on offset→payload;
// (c) each reader's offsets are contiguous from 1 within one epoch, with no
// repeat; (d) a payload whose publish failed or went unanswered appears at
// most once. It assumes every reader has caught up (Last ≥ MaxAcked).
func (h *History) Check() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	errs := append([]string(nil), h.errs...)
	names := make([]string, 0, len(h.readers))
	for n := range h.readers {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return append(errs, "no reader recorded anything")
	}
	truth := map[uint64]string{}
	truthFrom := map[uint64]string{}
	for _, n := range names {
		r := h.readers[n]
		seen := map[string]uint64{}
		for o := uint64(1); o <= r.last; o++ {
			p, ok := r.got[o]
			if !ok {
				errs = append(errs, fmt.Sprintf("reader %s: offset %d never delivered", n, o))
				continue
			}
			if prev, dup := seen[p]; dup {
				errs = append(errs, fmt.Sprintf("reader %s: payload %q at offsets %d and %d", n, p, prev, o))
			}
			seen[p] = o
			if t, ok := truth[o]; ok && t != p {
				errs = append(errs, fmt.Sprintf("readers %s and %s disagree at offset %d: %q vs %q", truthFrom[o], n, o, t, p))
			} else if !ok {
				truth[o], truthFrom[o] = p, n
			}
		}
		for o, p := range h.acked {
			if got, ok := r.got[o]; !ok {
				errs = append(errs, fmt.Sprintf("reader %s: acknowledged offset %d (%q) never delivered", n, o, p))
			} else if got != p {
				errs = append(errs, fmt.Sprintf("reader %s: offset %d is %q, but the writer was acknowledged %q there", n, o, got, p))
			}
		}
	}
	return errs
}
