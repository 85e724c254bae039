package clustertest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// msg is one protocol message from the server.
type msg struct {
	ID     uint64          `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Push    string          `json:"push"`
	Channel string          `json:"channel"`
	Offset  uint64          `json:"offset"`
	Data    json.RawMessage `json:"data"`
	Code    int             `json:"code"`
}

// String describes a protocol error reply ("" for nil).
func (m *msg) String() string {
	if m == nil {
		return ""
	}
	if m.Error != nil {
		return fmt.Sprintf("error %d: %s", m.Error.Code, m.Error.Message)
	}
	return fmt.Sprintf("%s %s", m.Result, m.Push)
}

// pub is a publication as clients see it.
type pub struct {
	Offset uint64          `json:"offset"`
	Data   json.RawMessage `json:"data"`
}

// text is the chat message text a publication carries (the checker's payload).
func (p pub) text() string {
	var d struct {
		Text string `json:"text"`
	}
	_ = json.Unmarshal(p.Data, &d)
	return d.Text
}

// client is one protocol connection through the balancer, over WebSocket
// or an HTTP fallback transport ("ws", "longpoll" or "sse").
type client struct {
	kind   string
	base   string
	nextID atomic.Uint64

	mu      sync.Mutex
	pending map[uint64]chan msg
	pushes  chan msg
	closed  chan struct{}
	once    sync.Once
	err     error

	ws      *websocket.Conn
	session string // HTTP fallback session
	hc      *http.Client
	ctx     context.Context // ends with the connection
	cancel  context.CancelFunc
}

var errClosed = errors.New("connection closed")

// dial opens a connection of kind through the balancer at base.
func dial(ctx context.Context, base, kind string) (*client, error) {
	cctx, cancel := context.WithCancel(context.Background())
	c := &client{kind: kind, base: base, pending: map[uint64]chan msg{}, pushes: make(chan msg, 1024),
		closed: make(chan struct{}), hc: &http.Client{}, ctx: cctx, cancel: cancel}
	switch kind {
	case "ws":
		ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws", &websocket.DialOptions{Subprotocols: []string{"sori.v1"}})
		if err != nil {
			cancel()
			return nil, err
		}
		ws.SetReadLimit(16 << 20)
		c.ws = ws
		go c.readWS(cctx)
	case "longpoll", "sse":
		req, _ := http.NewRequestWithContext(ctx, "POST", base+"/http/open?transport="+kind, nil)
		resp, err := c.hc.Do(req)
		if err != nil {
			cancel()
			return nil, err
		}
		var open struct {
			Session string `json:"session"`
		}
		err = json.NewDecoder(resp.Body).Decode(&open)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || open.Session == "" {
			cancel()
			return nil, fmt.Errorf("open %s: status %d: %v", kind, resp.StatusCode, err)
		}
		c.session = open.Session
		if kind == "sse" {
			go c.readSSE(cctx)
		} else {
			go c.readPoll(cctx)
		}
	default:
		cancel()
		return nil, fmt.Errorf("unknown transport %q", kind)
	}
	return c, nil
}

func (c *client) fail(err error) {
	c.once.Do(func() {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		close(c.closed)
		c.cancel()
		if c.ws != nil {
			c.ws.CloseNow()
		}
	})
}

// Close ends the connection.
func (c *client) Close() {
	if c.session != "" {
		// Bounded: the session's holder may be a stopped node.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", c.base+"/http/close?session="+url.QueryEscape(c.session), nil)
		if resp, err := c.hc.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	c.fail(errClosed)
}

// dispatch hands one server message to its waiting command or the pushes.
func (c *client) dispatch(line []byte) {
	var m msg
	if err := json.Unmarshal(line, &m); err != nil {
		c.fail(fmt.Errorf("bad frame %q: %w", line, err))
		return
	}
	if m.Push != "" {
		if m.Push == "disconnect" {
			c.fail(fmt.Errorf("disconnect %d", m.Code))
			return
		}
		select {
		case c.pushes <- m:
		default:
			c.fail(errors.New("client push buffer full"))
		}
		return
	}
	c.mu.Lock()
	ch := c.pending[m.ID]
	delete(c.pending, m.ID)
	c.mu.Unlock()
	if ch != nil {
		ch <- m
	}
}

func (c *client) dispatchLines(b []byte) {
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) > 0 {
			c.dispatch(line)
		}
	}
}

func (c *client) readWS(ctx context.Context) {
	for {
		_, b, err := c.ws.Read(ctx)
		if err != nil {
			c.fail(err)
			return
		}
		c.dispatchLines(b)
	}
}

func (c *client) sessionURL(path string, extra string) string {
	return c.base + path + "?session=" + url.QueryEscape(c.session) + extra
}

// readPoll long-polls until the session ends. A 404 (the node holding the
// session died, or it expired) ends the connection: the caller opens a new
// session and recovers, as the JS SDK does.
func (c *client) readPoll(ctx context.Context) {
	var ack uint64
	failures := 0
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", c.sessionURL("/poll", "&wait=5s&ack="+strconv.FormatUint(ack, 10)), nil)
		resp, err := c.hc.Do(req)
		if err != nil {
			c.fail(err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusBadGateway && failures < 3 {
			// The node this poll passed through died under it: poll
			// again with the same ack (the holder still has every frame).
			failures++
			continue
		}
		failures = 0
		switch resp.StatusCode {
		case http.StatusOK:
			if s, err := strconv.ParseUint(resp.Header.Get("X-Sori-Seq"), 10, 64); err == nil {
				ack = s
			}
			c.dispatchLines(b)
		case http.StatusNoContent:
		default:
			c.fail(fmt.Errorf("poll: %d %s", resp.StatusCode, bytes.TrimSpace(b)))
			return
		}
		select {
		case <-c.closed:
			return
		default:
		}
	}
}

// readSSE reads the event stream, reconnecting it with Last-Event-ID when
// a stream ends (each reconnection may land on another node).
func (c *client) readSSE(ctx context.Context) {
	var last uint64
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", c.sessionURL("/sse", ""), nil)
		req.Header.Set("Last-Event-ID", strconv.FormatUint(last, 10))
		resp, err := c.hc.Do(req)
		if err != nil {
			c.fail(err)
			return
		}
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			c.fail(fmt.Errorf("sse: %d %s", resp.StatusCode, bytes.TrimSpace(b)))
			return
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		var data []byte
		var id uint64
		for sc.Scan() {
			line := sc.Bytes()
			switch {
			case len(line) == 0:
				if data != nil {
					c.dispatch(data)
					if id != 0 {
						last = id
					}
				}
				data, id = nil, 0
			case bytes.HasPrefix(line, []byte("id: ")):
				id, _ = strconv.ParseUint(string(line[4:]), 10, 64)
			case bytes.HasPrefix(line, []byte("data: ")):
				if data != nil {
					data = append(data, '\n')
				}
				data = append(data, line[6:]...)
			}
		}
		resp.Body.Close()
		select {
		case <-c.closed:
			return
		default:
		}
	}
}

// call sends a command and waits for its reply. It returns the result, the
// protocol error (a reply) or the transport error (no reply, unknown fate).
func (c *client) call(ctx context.Context, cmd map[string]any) (json.RawMessage, *msg, error) {
	id := c.nextID.Add(1)
	cmd["id"] = id
	b, _ := json.Marshal(cmd)
	ch := make(chan msg, 1)
	c.mu.Lock()
	c.pending[id] = ch
	c.mu.Unlock()
	var err error
	if c.ws != nil {
		err = c.ws.Write(ctx, websocket.MessageText, b)
	} else {
		// The request ends with the connection too (a watchdog gave up).
		rctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(c.ctx, cancel)
		defer func() { stop(); cancel() }()
		var req *http.Request
		req, err = http.NewRequestWithContext(rctx, "POST", c.sessionURL("/http/send", ""), bytes.NewReader(b))
		if err == nil {
			var resp *http.Response
			resp, err = c.hc.Do(req)
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					err = fmt.Errorf("send: %d %s", resp.StatusCode, bytes.TrimSpace(body))
				}
			}
		}
	}
	if err != nil {
		c.fail(err)
		return nil, nil, err
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return nil, &m, nil
		}
		return m.Result, nil, nil
	case <-c.closed:
		return nil, nil, c.cause()
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
}

func (c *client) cause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// connect opens a connection of kind through the balancer and authenticates.
func (cl *cluster) connect(ctx context.Context, kind string, u user) (*client, error) {
	return cl.connectTo(ctx, cl.URL, kind, u)
}

// connectTo opens a connection of kind to base (a node or the balancer).
func (cl *cluster) connectTo(ctx context.Context, base, kind string, u user) (*client, error) {
	tok, err := cl.connectToken(ctx, u)
	if err != nil {
		return nil, err
	}
	return cl.dialToken(ctx, base, kind, tok)
}

// dialToken opens a connection of kind to base and connects with tok.
func (cl *cluster) dialToken(ctx context.Context, base, kind, tok string) (*client, error) {
	if cl.watch > 0 {
		// The node this lands on may be stopped: give up and let the
		// caller dial again (through the balancer: likely another node).
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 2*cl.watch)
		defer cancel()
	}
	c, err := dial(ctx, base, kind)
	if err != nil {
		return nil, err
	}
	if _, e, err := c.call(ctx, map[string]any{"op": "connect", "token": tok}); err != nil || e != nil {
		c.Close()
		if e != nil {
			return nil, fmt.Errorf("connect: %s", e.Error.Message)
		}
		return nil, err
	}
	if cl.watch > 0 {
		go c.watchdog(cl.watch)
	}
	return c, nil
}

// watchdog pings every d/4 and ends the connection when a ping is not
// answered within d, as the JS SDK does when the server's pings stop: a
// stopped node keeps its TCP connections open and answers nothing.
func (c *client) watchdog(d time.Duration) {
	t := time.NewTicker(d / 4)
	defer t.Stop()
	for {
		select {
		case <-c.closed:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), d)
		_, _, err := c.call(ctx, map[string]any{"op": "ping"})
		cancel()
		if err != nil {
			c.fail(fmt.Errorf("no answer to a ping within %v: %w", d, err))
			return
		}
	}
}
