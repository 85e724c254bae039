package bench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// client is one bench connection: the hand-written client (wsconn.go), or,
// with --compression, a library client that negotiates permessage-deflate.
type client struct {
	raw *wsConn
	ws  *websocket.Conn
}

// dial opens connection i from a loopback source address chosen round-robin
// (each source address has its own ~28k ephemeral ports), and subscribes it
// to its channel in the run's protocol.
func (r *run) dial(ctx context.Context, i int) (*client, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if r.loopback && r.cfg.SourceIPs > 1 {
		d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%r.cfg.SourceIPs))}
	}
	var tok string
	if r.proto.needsToken {
		var t struct{ Token string }
		if err := r.api(ctx, "/api/token", map[string]any{"user": userOf(i), "ttl": "1h"}, &t); err != nil {
			return nil, err
		}
		tok = t.Token
	}
	ch := r.channels[r.channelOf(i)]
	if r.cfg.Compression {
		return r.dialCompressed(ctx, d, tok, ch)
	}
	u, err := url.Parse(r.cfg.URL)
	if err != nil {
		return nil, err
	}
	c, err := dialWS(d, u.Host, r.proto.path(ch), r.proto.subprotocol, 10*time.Second, r.cfg.RxClock == RxClockKernel)
	if err != nil {
		return nil, err
	}
	_ = c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	for _, m := range r.proto.hello(tok, ch) {
		if err := c.send(m); err != nil {
			_ = c.nc.Close()
			return nil, fmt.Errorf("bench: subscribe: %w", err)
		}
	}
	for {
		f, err := c.next()
		if err != nil {
			_ = c.nc.Close()
			return nil, fmt.Errorf("bench: subscribe: %w", err)
		}
		if bytes.Contains(f, []byte(`"error"`)) {
			_ = c.nc.Close()
			return nil, fmt.Errorf("bench: subscribe: %s", f)
		}
		if pong := r.pong(f); pong != nil {
			if err := c.send(pong); err != nil {
				_ = c.nc.Close()
				return nil, err
			}
		}
		if r.proto.setup != nil {
			if m := r.proto.setup(f, ch); m != nil {
				if err := c.send(m); err != nil {
					_ = c.nc.Close()
					return nil, err
				}
			}
		}
		if bytes.Contains(f, r.proto.subscribed) {
			break
		}
	}
	_ = c.nc.SetDeadline(time.Time{})
	if c.rx != nil {
		r.rxKernel.Add(1)
	}
	return &client{raw: c}, nil
}

func (r *run) pong(f []byte) []byte {
	if r.proto.pong == nil {
		return nil
	}
	return r.proto.pong(f)
}

// dialCompressed is dial for --compression (Sori's protocol only).
func (r *run) dialCompressed(ctx context.Context, d *net.Dialer, tok, ch string) (*client, error) {
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	opts := &websocket.DialOptions{HTTPClient: hc, Subprotocols: []string{r.proto.subprotocol},
		CompressionMode: websocket.CompressionNoContextTakeover}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(r.cfg.URL, "http") + r.proto.path(ch)
	c, _, err := websocket.Dial(dctx, wsURL, opts)
	if err != nil {
		return nil, fmt.Errorf("bench: dial %s: %w", wsURL, err)
	}
	c.SetReadLimit(1 << 20)
	for _, m := range r.proto.hello(tok, ch) {
		if err := c.Write(dctx, websocket.MessageText, m); err != nil {
			_ = c.CloseNow()
			return nil, fmt.Errorf("bench: subscribe: %w", err)
		}
	}
	for {
		_, b, err := c.Read(dctx)
		if err != nil {
			_ = c.CloseNow()
			return nil, fmt.Errorf("bench: subscribe: %w", err)
		}
		if bytes.Contains(b, []byte(`"error"`)) {
			_ = c.CloseNow()
			return nil, fmt.Errorf("bench: subscribe: %s", b)
		}
		if bytes.Contains(b, r.proto.subscribed) {
			return &client{ws: c}, nil
		}
	}
}

// read returns the next message and its receive time (unix nanos; the
// kernel's with RxClockKernel on the hand-written client).
func (c *client) read() ([]byte, int64, error) {
	if c.raw != nil {
		b, err := c.raw.next()
		if err != nil {
			return nil, 0, err
		}
		return b, c.raw.rxTime(), nil
	}
	_, b, err := c.ws.Read(context.Background())
	return b, time.Now().UnixNano(), err
}

func (c *client) send(m []byte) error {
	if c.raw != nil {
		return c.raw.send(m)
	}
	return c.ws.Write(context.Background(), websocket.MessageText, m)
}

func (c *client) close() {
	if c.raw != nil {
		_ = c.raw.close()
		return
	}
	_ = c.ws.Close(websocket.StatusNormalClosure, "bench done")
}

var timeKey = []byte(`"t":`)

// readLoop counts publications and records their latency from the send time
// the publisher put in the data ({"t":<unix nanos>,…}; a frame may carry
// several, as Centrifugo joins messages with newlines).
func (c *client) readLoop(r *run) {
	for {
		b, now, err := c.read()
		if err != nil {
			if !r.stopping.Load() {
				r.discs.Add(1)
			}
			return
		}
		if pong := r.pong(b); pong != nil {
			_ = c.send(pong)
			continue
		}
		for {
			i := bytes.Index(b, timeKey)
			if i < 0 {
				break
			}
			b = b[i+len(timeKey):]
			var sent int64
			j := 0
			for ; j < len(b) && b[j] >= '0' && b[j] <= '9'; j++ {
				sent = sent*10 + int64(b[j]-'0')
			}
			if j == 0 {
				continue
			}
			b = b[j:]
			d := time.Duration(now - sent)
			r.hist.Load().Record(d)
			r.window.Load().Record(d)
			r.delivered.Add(1)
		}
	}
}
