package httpstream

import (
	"bytes"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sori-dev/sori/internal/httpx"
	"github.com/sori-dev/sori/internal/transport/netpoll"
)

// Parked requests: SSE streams and long polls without a goroutine.
//
// Served the plain way, an SSE stream or a long poll waiting for frames
// holds two goroutines of net/http for as long as it is open: the one
// running the handler and the one reading in the background to notice the
// client leaving. Over HTTP/1.1 the handler instead hijacks the connection,
// writes the response head itself and returns; the request is then a
// parked value with no goroutine:
//   - frames for it arrive through conn.Wake (the session's queue went from
//     empty to not), a heartbeat through conn.Ping, a replacing request
//     through conn.attach, the end of a poll's wait through a timer, and the
//     client leaving through a readiness notification of its socket
//     (netpoll: the client sends nothing more on such a request, so
//     readable means closed or misbehaving);
//   - each of these calls wake, which starts a goroutine for one or more
//     passes (step) only if none runs; the goroutine ends when the pass finds
//     nothing more to do.
//
// A hijacked connection is not handed back to net/http: an SSE stream ends
// with the connection, and a long poll that had to wait answers with
// "Connection: close" (a poll that finds frames at once is answered the
// plain way and keeps its connection). HTTP/2 requests, and any whose
// connection cannot be hijacked, are served on their goroutine as before;
// where the socket cannot be watched (TLS, systems other than Linux) one
// goroutine per request waits for the client to leave.
type parked struct {
	h     *Handler
	c     *conn
	nc    net.Conn
	gen   uint64
	kick  <-chan struct{}
	step  func(*parked) bool // one pass; true ends the request. Passes never overlap
	runs  atomic.Int32       // wakes not yet looked at; a goroutine runs passes while > 0
	gone  atomic.Bool        // the client's socket became readable: it left
	due   atomic.Bool        // a long poll's wait is over
	watch *netpoll.Watch
	timer *time.Timer
	wait  time.Duration // a long poll's wait

	after uint64      // SSE: last sequence number written; poll: the ack
	head  []byte      // SSE: the response head, written with the first pass
	hd    http.Header // poll: the response headers set before parking
	es    []entry
}

// wake asks for a pass, from any goroutine, without blocking.
func (p *parked) wake() {
	if p.runs.Add(1) == 1 {
		go p.run()
	}
}

func (p *parked) run() {
	for {
		n := p.runs.Load()
		if p.step(p) {
			// runs stays above zero: later wakes start nothing.
			p.end()
			return
		}
		if p.runs.CompareAndSwap(n, 0) {
			return
		}
	}
}

func (p *parked) kicked() bool {
	select {
	case <-p.kick:
		return true
	default:
		return false
	}
}

func (p *parked) end() {
	if p.watch != nil {
		p.watch.Stop() // before Close: it names the socket
	}
	if p.timer != nil {
		p.timer.Stop()
	}
	_ = p.nc.Close()
	p.c.detach(p.gen, p)
	if f := p.h.hooks.ended; f != nil {
		f()
	}
}

func (p *parked) write(b []byte) error {
	_ = p.nc.SetWriteDeadline(time.Now().Add(p.h.opts.WriteTimeout))
	_, err := p.nc.Write(b)
	return err
}

// park hijacks r's connection for p and starts it: p.step then runs on
// wakes. It reports false, having touched nothing, when the connection
// cannot be hijacked (HTTP/2, a wrapper); the caller serves r itself.
func (h *Handler) park(w http.ResponseWriter, r *http.Request, p *parked) bool {
	if h.opts.NoPark || r.ProtoMajor != 1 || !r.ProtoAtLeast(1, 1) {
		return false
	}
	nc, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	_ = nc.SetDeadline(time.Time{}) // the server's timeouts were for the request
	p.h, p.nc = h, nc
	// Until the first pass below, wakes only count: nothing may run a pass
	// (or end) while the fields below are being set.
	p.runs.Store(1)
	gone := func() {
		p.gone.Store(true)
		p.wake()
	}
	if p.watch, err = h.poller.Watch(netpoll.RawConn(nc), gone); err != nil {
		go func() {
			var b [1]byte
			_, _ = nc.Read(b[:]) // returns when the client leaves or p.end closes nc
			gone()
		}()
	}
	if p.wait > 0 {
		p.timer = time.AfterFunc(p.wait, func() {
			p.due.Store(true)
			p.wake()
		})
	}
	p.gen, p.kick = p.c.attach(p)
	p.run() // the first pass, on the request's goroutine, which then ends
	if f := h.hooks.parked; f != nil {
		f()
	}
	return true
}

// parkSSE serves an SSE stream parked; hd holds its response headers.
func (h *Handler) parkSSE(w http.ResponseWriter, r *http.Request, c *conn, after uint64) bool {
	hd := w.Header()
	head := []byte("HTTP/1.1 200 OK\r\n")
	var b bytes.Buffer
	_ = hd.Write(&b)
	head = append(head, b.Bytes()...)
	head = append(head, "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"...)
	head = appendChunk(head, []byte("retry: "+strconv.FormatInt(h.opts.Retry.Milliseconds(), 10)+"\n\n"))
	return h.park(w, r, &parked{c: c, after: after, head: head, step: (*parked).sseStep})
}

// sseStep writes the frames due and a heartbeat if one is; the stream ends
// after the disconnect push, when replaced, when the client left, or when a
// write fails.
func (p *parked) sseStep() bool {
	if p.gone.Load() || p.kicked() {
		_ = p.write([]byte("0\r\n\r\n"))
		return true
	}
	es, final, ping := p.c.next(p.after, p.es)
	var ev []byte
	for _, e := range es {
		ev = appendEvent(ev, e.seq, e.data)
	}
	if ping && len(ev) == 0 {
		ev = append(ev, ":\n\n"...)
	}
	out := p.head
	p.head = nil
	if len(ev) > 0 {
		out = appendChunk(out, ev)
	}
	if final {
		out = append(out, "0\r\n\r\n"...)
	}
	if len(out) > 0 {
		if err := p.write(out); err != nil {
			return true
		}
		if len(es) > 0 {
			p.after = es[len(es)-1].seq
			p.c.sess.Wrote(len(es), len(ev), oldest(es))
		}
	}
	clear(es) // the frames belong to the outbox; keep no reference while idle
	p.es = es[:0]
	return final
}

func appendChunk(b, data []byte) []byte {
	b = strconv.AppendUint(b, uint64(len(data)), 16)
	b = append(b, '\r', '\n')
	b = append(b, data...)
	return append(b, '\r', '\n')
}

// parkPoll serves a long poll that found nothing to deliver, parked until
// frames arrive or wait is over.
func (h *Handler) parkPoll(w http.ResponseWriter, r *http.Request, c *conn, ack uint64, wait time.Duration) bool {
	p := &parked{c: c, after: ack, wait: wait, hd: w.Header().Clone(), step: (*parked).pollStep}
	return h.park(w, r, p)
}

// pollStep answers the poll as the goroutine path does, once there is
// something to answer.
func (p *parked) pollStep() bool {
	if p.gone.Load() {
		return true
	}
	es, final, _ := p.c.next(p.after, nil)
	rec := &recorder{hd: p.hd}
	switch {
	case len(es) == 0 && final:
		httpx.WriteError(rec, errUnknownSession)
	case len(es) > 0:
		p.h.writeBatch(rec, p.c, es)
	case p.due.Load() || p.kicked():
		rec.hd.Set("X-Sori-Seq", strconv.FormatUint(p.after, 10))
		rec.WriteHeader(http.StatusNoContent)
	default:
		return false
	}
	_ = p.write(rec.response())
	return true
}

// recorder collects a response to write on a hijacked connection.
type recorder struct {
	hd     http.Header
	status int
	body   []byte
}

func (r *recorder) Header() http.Header { return r.hd }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	r.body = append(r.body, b...)
	return len(b), nil
}

// response is the HTTP/1.1 response; the connection closes after it.
func (r *recorder) response() []byte {
	r.WriteHeader(http.StatusOK)
	r.hd.Set("Connection", "close")
	if r.status == http.StatusNoContent {
		r.hd.Del("Content-Length")
	} else {
		r.hd.Set("Content-Length", strconv.Itoa(len(r.body)))
	}
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 " + strconv.Itoa(r.status) + " " + http.StatusText(r.status) + "\r\n")
	_ = r.hd.Write(&b)
	b.WriteString("\r\n")
	b.Write(r.body)
	return b.Bytes()
}
