package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// client is one bench connection: a WebSocket speaking sori.v1.
type client struct {
	ws *websocket.Conn
}

// dial opens connection i from a loopback source address chosen round-robin
// (each source address has its own ~28k ephemeral ports), connects and
// subscribes to its channel.
func (r *run) dial(ctx context.Context, i int) (*client, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if r.loopback && r.cfg.SourceIPs > 1 {
		d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%r.cfg.SourceIPs))}
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	opts := &websocket.DialOptions{HTTPClient: hc, Subprotocols: []string{"sori.v1"}}
	if r.cfg.Compression {
		opts.CompressionMode = websocket.CompressionNoContextTakeover
	}
	var tok struct{ Token string }
	if err := r.api(ctx, "/api/token", map[string]any{"user": userOf(i), "ttl": "1h"}, &tok); err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(r.cfg.URL, "http") + "/ws"
	c, _, err := websocket.Dial(dctx, wsURL, opts)
	if err != nil {
		return nil, fmt.Errorf("bench: dial %s: %w", wsURL, err)
	}
	c.SetReadLimit(1 << 20)
	cmds := fmt.Sprintf(`{"id":1,"op":"connect","token":%q}`+"\n"+`{"id":2,"op":"subscribe","channel":%q}`, tok.Token, r.channels[r.channelOf(i)])
	if err := c.Write(dctx, websocket.MessageText, []byte(cmds)); err != nil {
		_ = c.CloseNow()
		return nil, fmt.Errorf("bench: connect: %w", err)
	}
	for got := 0; got < 2; {
		_, b, err := c.Read(dctx)
		if err != nil {
			_ = c.CloseNow()
			return nil, fmt.Errorf("bench: connect: %w", err)
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			var rep struct {
				ID    int             `json:"id"`
				Error json.RawMessage `json:"error"`
			}
			if json.Unmarshal(line, &rep) != nil || rep.ID == 0 {
				continue
			}
			if rep.Error != nil {
				_ = c.CloseNow()
				return nil, fmt.Errorf("bench: command %d: %s", rep.ID, rep.Error)
			}
			got++
		}
	}
	return &client{ws: c}, nil
}

var timeKey = []byte(`"t":`)

// readLoop counts publications and records their latency from the send time
// the publisher put in the data.
func (c *client) readLoop(r *run) {
	for {
		_, b, err := c.ws.Read(context.Background())
		if err != nil {
			if !r.stopping.Load() {
				r.discs.Add(1)
			}
			return
		}
		now := time.Now().UnixNano()
		for len(b) > 0 {
			line := b
			if i := bytes.IndexByte(b, '\n'); i >= 0 {
				line, b = b[:i], b[i+1:]
			} else {
				b = nil
			}
			i := bytes.Index(line, timeKey)
			if i < 0 || !bytes.HasPrefix(line, []byte(`{"push":"pub"`)) {
				continue
			}
			rest := line[i+len(timeKey):]
			end := bytes.IndexAny(rest, ",}")
			if end < 0 {
				continue
			}
			sent, err := strconv.ParseInt(string(rest[:end]), 10, 64)
			if err != nil {
				continue
			}
			d := time.Duration(now - sent)
			r.hist.Record(d)
			r.window.Load().Record(d)
			r.delivered.Add(1)
		}
	}
}
