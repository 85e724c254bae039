package httpstream

import (
	"bytes"
	"net/http"
	"strconv"
	"time"

	"github.com/sori-dev/sori/internal/httpx"
)

// sse streams the session's frames as Server-Sent Events (WHATWG HTML
// §9.2): one event per protocol message, its id the frame's sequence number,
// so an EventSource that reconnects sends Last-Event-ID and the stream resumes
// right after the last event it saw. Heartbeats are comment lines.
func (h *Handler) sse(w http.ResponseWriter, r *http.Request) {
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
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("last")
	}
	after, ok := position(last)
	if !ok {
		httpx.WriteError(w, errBadPosition)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	if !c.resume(after) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(appendEvent(nil, 0, encodeGap()))
		c.Close(gap)
		return
	}
	if h.parkSSE(w, r, c, after) {
		return
	}
	gen, kick := c.attach(nil)
	defer c.detach(gen, nil)
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	buf := []byte("retry: " + strconv.FormatInt(h.opts.Retry.Milliseconds(), 10) + "\n\n")
	var es []entry
	for {
		var final, ping bool
		es, final, ping = c.next(after, es)
		for _, e := range es {
			buf = appendEvent(buf, e.seq, e.data)
		}
		if ping && len(buf) == 0 {
			buf = append(buf, ":\n\n"...)
		}
		if len(buf) > 0 {
			_ = rc.SetWriteDeadline(time.Now().Add(h.opts.WriteTimeout))
			if _, err := w.Write(buf); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
			if len(es) > 0 {
				after = es[len(es)-1].seq
				c.sess.Wrote(len(es), len(buf), oldest(es))
			}
			buf = buf[:0]
		}
		if final {
			return
		}
		select {
		case <-c.wake:
		case <-kick:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// appendEvent appends one event. A data line ends at CR or LF, so a frame
// holding either (JSON whitespace inside client data) is split over several
// data lines, which the client joins with LF: still the same JSON.
func appendEvent(b []byte, seq uint64, data []byte) []byte {
	if seq != 0 {
		b = append(b, "id: "...)
		b = strconv.AppendUint(b, seq, 10)
		b = append(b, '\n')
	}
	for {
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			break
		}
		b = append(b, "data: "...)
		b = append(b, data[:i]...)
		b = append(b, '\n')
		data = data[i+1:]
	}
	b = append(b, "data: "...)
	b = append(b, data...)
	return append(b, '\n', '\n')
}
