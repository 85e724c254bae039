package httpstream

import (
	"net/http"
	"strconv"
	"time"

	"github.com/sori-dev/sori/internal/httpx"
	"github.com/sori-dev/sori/internal/protocol"
)

var errBadPosition = protocol.ErrBadRequest.WithMessage("ack, last and Last-Event-ID must be sequence numbers")

func encodeGap() []byte { return protocol.EncodeDisconnect(gap) }

// poll answers with every frame after the client's ack, as JSON lines, and
// the last frame's sequence number in X-Sori-Seq; the client sends it back as
// ack on its next poll, which is what lets the server forget those frames. A
// poll with nothing to deliver waits up to wait (default and cap: PollWait;
// wait=0 is a short poll) and then answers 204.
func (h *Handler) poll(w http.ResponseWriter, r *http.Request) {
	if h.forward(w, r) {
		return
	}
	if !h.allow(w, r) {
		return
	}
	c := h.lookup(w, r)
	if c == nil {
		return
	}
	q := r.URL.Query()
	ack, ok := position(q.Get("ack"))
	if !ok {
		httpx.WriteError(w, errBadPosition)
		return
	}
	wait := h.opts.PollWait
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			if secs, err2 := strconv.ParseFloat(v, 64); err2 == nil {
				d, err = time.Duration(secs*float64(time.Second)), nil
			}
		}
		if err != nil || d < 0 {
			httpx.WriteError(w, protocol.ErrBadRequest.WithMessage("wait must be a duration such as 20s, or seconds"))
			return
		}
		wait = min(d, h.opts.PollWait)
	}
	hd := w.Header()
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no")
	if !c.resume(ack) {
		hd.Set("Content-Type", "application/jsonl")
		_, _ = w.Write(encodeGap())
		c.Close(gap)
		return
	}
	// A poll waits on its goroutine first, keeping its connection for the
	// next poll: an active session's polls are answered within PollHold.
	// One that is still waiting then parks (park.go) for the rest of its
	// wait, holding no goroutine, and its answer closes the connection.
	hold := wait
	if !h.opts.NoPark {
		hold = min(wait, h.opts.PollHold)
	}
	if h.holdPoll(w, r, c, ack, hold) {
		return
	}
	if rest := wait - hold; rest > 0 {
		if h.parkPoll(w, r, c, ack, rest) || h.holdPoll(w, r, c, ack, rest) {
			return
		}
	}
	hd.Set("X-Sori-Seq", strconv.FormatUint(ack, 10))
	w.WriteHeader(http.StatusNoContent)
}

// holdPoll waits on the request's goroutine up to d for frames after ack and
// reports whether it answered: with frames, with the session's end, or (204)
// because a new request replaced it or the client left. It returns false,
// having written nothing, when d passed with nothing to deliver.
func (h *Handler) holdPoll(w http.ResponseWriter, r *http.Request, c *conn, ack uint64, d time.Duration) bool {
	gen, kick := c.attach(nil)
	defer c.detach(gen, nil)
	var timer <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	for {
		es, final, _ := c.next(ack, nil)
		if len(es) == 0 && final {
			httpx.WriteError(w, errUnknownSession)
			return true
		}
		if len(es) > 0 {
			h.writeBatch(w, c, es)
			return true
		}
		if d <= 0 {
			return false
		}
		select {
		case <-c.wake:
			continue
		case <-timer:
			return false
		case <-kick:
		case <-r.Context().Done():
		}
		w.Header().Set("X-Sori-Seq", strconv.FormatUint(ack, 10))
		w.WriteHeader(http.StatusNoContent)
		return true
	}
}

func (h *Handler) writeBatch(w http.ResponseWriter, c *conn, es []entry) {
	size := 0
	for _, e := range es {
		size += len(e.data) + 1
	}
	b := make([]byte, 0, size)
	for i, e := range es {
		if i > 0 {
			b = append(b, '\n')
		}
		b = append(b, e.data...)
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/jsonl")
	hd.Set("Content-Length", strconv.Itoa(len(b)))
	hd.Set("X-Sori-Seq", strconv.FormatUint(es[len(es)-1].seq, 10))
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(h.opts.WriteTimeout))
	if _, err := w.Write(b); err == nil {
		c.sess.Wrote(len(es), len(b), oldest(es))
	}
}
