package lab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Transports the lab compares, in the order of the table.
const (
	ShortPoll = "short-poll"
	LongPoll  = "long-poll"
	SSE       = "sse+post"
	WebSocket = "websocket"
	Deflate   = "websocket+deflate"
)

// AllTransports lists every transport, cheapest last.
var AllTransports = []string{ShortPoll, LongPoll, SSE, WebSocket, Deflate}

// client is one protocol client on some transport. onMsg is called for
// each server message, from one goroutine.
type client interface {
	send(ctx context.Context, cmds []byte) error
	close()
}

type dialer struct {
	base     string // http://host:port
	http     *http.Client
	interval time.Duration // short polling interval
}

// open starts a client of kind whose first commands are cmds.
func (d *dialer) open(ctx context.Context, kind string, cmds []byte, onMsg func([]byte)) (client, error) {
	switch kind {
	case WebSocket, Deflate:
		return d.openWS(ctx, kind == Deflate, cmds, onMsg)
	case SSE, LongPoll, ShortPoll:
		return d.openHTTP(ctx, kind, cmds, onMsg)
	}
	return nil, fmt.Errorf("lab: unknown transport %q", kind)
}

type wsClient struct {
	c    *websocket.Conn
	done chan struct{}
}

func (d *dialer) openWS(ctx context.Context, deflate bool, cmds []byte, onMsg func([]byte)) (client, error) {
	opts := &websocket.DialOptions{HTTPClient: d.http, Subprotocols: []string{"sori.v1"}}
	if deflate {
		opts.CompressionMode = websocket.CompressionNoContextTakeover
		opts.CompressionThreshold = 128
	}
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(d.base, "http")+"/ws", opts)
	if err != nil {
		return nil, fmt.Errorf("lab: websocket dial: %w", err)
	}
	c.SetReadLimit(8 << 20)
	w := &wsClient{c: c, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				return
			}
			eachLine(b, onMsg)
		}
	}()
	if err := w.send(ctx, cmds); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

func (w *wsClient) send(ctx context.Context, cmds []byte) error {
	return w.c.Write(ctx, websocket.MessageText, cmds)
}

func (w *wsClient) close() {
	_ = w.c.Close(websocket.StatusNormalClosure, "")
	<-w.done
}

func eachLine(b []byte, f func([]byte)) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if len(line) > 0 {
			f(line)
		}
	}
}

// httpClient is an SSE or polling client of an HTTP session.
type httpClient struct {
	d      *dialer
	kind   string
	sid    string
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	ack    uint64 // last sequence number received (SSE: sent with POSTs)
}

func (d *dialer) openHTTP(ctx context.Context, kind string, cmds []byte, onMsg func([]byte)) (client, error) {
	tr := "sse"
	if kind != SSE {
		tr = "longpoll"
	}
	var open struct{ Session string }
	if err := d.post(ctx, "/http/open?transport="+tr, cmds, &open); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	h := &httpClient{d: d, kind: kind, sid: open.Session, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		if kind == SSE {
			h.stream(rctx, onMsg)
		} else {
			h.poll(rctx, onMsg)
		}
	}()
	return h, nil
}

func (d *dialer) post(ctx context.Context, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain")
	resp, err := d.http.Do(req)
	if err != nil {
		return fmt.Errorf("lab: POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("lab: POST %s: %s %s", path, resp.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func (h *httpClient) send(ctx context.Context, cmds []byte) error {
	h.mu.Lock()
	ack := h.ack
	h.mu.Unlock()
	return h.d.post(ctx, "/http/send?session="+h.sid+"&ack="+strconv.FormatUint(ack, 10), cmds, nil)
}

func (h *httpClient) close() {
	h.cancel()
	<-h.done
	_ = h.d.post(context.Background(), "/http/close?session="+h.sid, nil, nil)
}

// stream reads the SSE stream, reconnecting with Last-Event-ID if it drops.
func (h *httpClient) stream(ctx context.Context, onMsg func([]byte)) {
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.d.base+"/sse?session="+h.sid, nil)
		h.mu.Lock()
		if h.ack > 0 {
			req.Header.Set("Last-Event-ID", strconv.FormatUint(h.ack, 10))
		}
		h.mu.Unlock()
		resp, err := h.d.http.Do(req)
		if err != nil {
			return
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return
		}
		br := bufio.NewReader(resp.Body)
		var data []byte
		var id uint64
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				break
			}
			line = bytes.TrimRight(line, "\n")
			switch {
			case len(line) == 0:
				if data != nil {
					onMsg(data)
					if id != 0 {
						h.mu.Lock()
						h.ack = id
						h.mu.Unlock()
					}
				}
				data, id = nil, 0
			case bytes.HasPrefix(line, []byte("data: ")):
				if data != nil {
					data = append(data, '\n')
				}
				data = append(data, line[6:]...)
			case bytes.HasPrefix(line, []byte("id: ")):
				id, _ = strconv.ParseUint(string(line[4:]), 10, 64)
			}
		}
		resp.Body.Close()
	}
}

// poll runs long polls, or short polls every interval.
func (h *httpClient) poll(ctx context.Context, onMsg func([]byte)) {
	wait := "25s"
	if h.kind == ShortPoll {
		wait = "0"
	}
	for ctx.Err() == nil {
		h.mu.Lock()
		ack := h.ack
		h.mu.Unlock()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet,
			h.d.base+"/poll?session="+h.sid+"&wait="+wait+"&ack="+strconv.FormatUint(ack, 10), nil)
		resp, err := h.d.http.Do(req)
		if err != nil {
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || (resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent) {
			return
		}
		if seq, err := strconv.ParseUint(resp.Header.Get("X-Sori-Seq"), 10, 64); err == nil {
			h.mu.Lock()
			h.ack = seq
			h.mu.Unlock()
		}
		eachLine(b, onMsg)
		if h.kind == ShortPoll {
			select {
			case <-ctx.Done():
			case <-time.After(h.d.interval):
			}
		}
	}
}
