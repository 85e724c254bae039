package bench_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sori-dev/sori/internal/tools/bench"
)

// peerServer is a tiny in-test version of a scripts/bench-peers/ server:
// POST /publish {"channel","data"} sends data to every subscriber of the
// channel, in the protocol the peer speaks (plain: the Node `ws` server;
// socketio: the Socket.IO v4 one, Engine.IO 4 over WebSocket only).
type peerServer struct {
	socketIO bool
	pongs    chan struct{} // one per Engine.IO pong ("3") received

	mu   sync.Mutex
	subs map[string][]*websocket.Conn
}

func startPeer(t *testing.T, socketIO bool) (*peerServer, string) {
	t.Helper()
	p := &peerServer{socketIO: socketIO, pongs: make(chan struct{}, 100), subs: map[string][]*websocket.Conn{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /publish", p.publish)
	mux.HandleFunc("GET /ws", p.plain)
	mux.HandleFunc("GET /socket.io/", p.engineIO)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return p, srv.URL
}

func (p *peerServer) subscribe(ch string, c *websocket.Conn) {
	p.mu.Lock()
	p.subs[ch] = append(p.subs[ch], c)
	p.mu.Unlock()
}

func (p *peerServer) publish(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Channel string          `json:"channel"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	msg := []byte(req.Data) // plain: the data itself, encoded once
	if p.socketIO {
		msg = fmt.Appendf(nil, `42["pub",%s]`, req.Data)
	}
	p.mu.Lock()
	subs := append([]*websocket.Conn(nil), p.subs[req.Channel]...)
	p.mu.Unlock()
	for _, c := range subs {
		_ = c.Write(r.Context(), websocket.MessageText, msg)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte("{}"))
}

func accept(w http.ResponseWriter, r *http.Request) *websocket.Conn {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return nil
	}
	return c
}

// plain: GET /ws?channel=C subscribes to C and says {"subscribed":C}.
func (p *peerServer) plain(w http.ResponseWriter, r *http.Request) {
	c := accept(w, r)
	if c == nil {
		return
	}
	defer c.CloseNow()
	ch := r.URL.Query().Get("channel")
	p.subscribe(ch, c)
	b, _ := json.Marshal(map[string]string{"subscribed": ch})
	if c.Write(r.Context(), websocket.MessageText, b) != nil {
		return
	}
	for {
		if _, _, err := c.Read(r.Context()); err != nil {
			return
		}
	}
}

// engineIO: the open packet, "40" → "40{sid}", 42["sub",C] → joins C and
// emits "subscribed", then one ping ("2") the client must answer ("3").
func (p *peerServer) engineIO(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("EIO") != "4" || r.URL.Query().Get("transport") != "websocket" {
		http.Error(w, "websocket transport, EIO=4 only", http.StatusBadRequest)
		return
	}
	c := accept(w, r)
	if c == nil {
		return
	}
	defer c.CloseNow()
	ctx := r.Context()
	send := func(s string) error { return c.Write(ctx, websocket.MessageText, []byte(s)) }
	if send(`0{"sid":"e1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`) != nil {
		return
	}
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		switch m := string(b); {
		case m == "40":
			err = send(`40{"sid":"s1"}`)
		case strings.HasPrefix(m, `42["sub",`):
			var ev []string
			if json.Unmarshal(b[2:], &ev) != nil || len(ev) != 2 {
				return
			}
			p.subscribe(ev[1], c)
			if err = send(fmt.Sprintf(`42["subscribed",%q]`, ev[1])); err == nil {
				err = send("2")
			}
		case m == "3":
			p.pongs <- struct{}{}
		}
		if err != nil {
			return
		}
	}
}

// `sori bench --protocol plain|socketio` against the peers' servers, as
// tiny Go servers speaking what scripts/bench-peers/*.js speak: every
// connection subscribes, every publication reaches every subscriber of its
// room, and the Socket.IO client answers the server's pings.
func TestBenchAgainstPeerProtocols(t *testing.T) {
	for _, proto := range []string{bench.ProtoPlain, bench.ProtoSocketIO} {
		t.Run(proto, func(t *testing.T) {
			peer, url := startPeer(t, proto == bench.ProtoSocketIO)
			rep, err := bench.Run(context.Background(), bench.Config{
				URL: url, APIKey: "peer-key", Protocol: proto, Conns: 10, SourceIPs: 2,
				Pattern: bench.PatternRooms, RoomSize: 5, Rate: 50, Duration: time.Second,
				Drain:     30 * time.Second, // ends when all arrived
				ServerPID: os.Getpid(), MaxErrors: 0,
			})
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if rep.Connected != 10 || rep.Published == 0 || rep.Errors != 0 || rep.Disconnects != 0 {
				t.Fatalf("connected %d published %d errors %d (%s) disconnects %d", rep.Connected, rep.Published, rep.Errors, rep.FirstError, rep.Disconnects)
			}
			if rep.Expected != 5*rep.Published || rep.Delivered != rep.Expected || rep.Latency.Count != uint64(rep.Delivered) {
				t.Fatalf("published %d expected %d delivered %d latencies %d", rep.Published, rep.Expected, rep.Delivered, rep.Latency.Count)
			}
			if proto == bench.ProtoSocketIO {
				for i := range 10 { // one per connection; each was sent well before the run ended
					select {
					case <-peer.pongs:
					case <-time.After(10 * time.Second): // only ends a broken test
						t.Fatalf("%d pongs, want one per connection", i)
					}
				}
			}
		})
	}
}
