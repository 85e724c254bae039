package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
)

// Protocols the load generator speaks, so that the same workload can be run
// against Sori and the servers it is compared with (scripts/bench-peers.sh).
const (
	ProtoSori       = "sori"       // Sori: sori.v1 over /ws, tokens and publications through its server API
	ProtoCentrifugo = "centrifugo" // Centrifugo v6 JSON protocol over /connection/websocket, its HTTP API (X-API-Key)
	ProtoPlain      = "plain"      // the peers' bench servers (scripts/bench-peers/): /ws?channel=C, POST /publish
	ProtoSocketIO   = "socketio"   // Socket.IO v4 (Engine.IO 4) over WebSocket, POST /publish on the same server
)

// protocol is what differs between the servers: the path and messages that
// subscribe a connection, how the subscription is acknowledged, how the
// server's application-level pings are answered and how to publish.
type protocol struct {
	needsToken  bool
	subprotocol string
	path        func(channel string) string
	hello       func(token, channel string) [][]byte      // messages sent after the handshake
	setup       func(frame []byte, channel string) []byte // a message to answer a setup frame with; nil = none
	subscribed  []byte                                    // a frame holding this acknowledges the subscription
	pong        func(frame []byte) []byte                 // the answer to a server ping frame; nil = not a ping
	publish     func(channel string, data json.RawMessage, key string) (path string, body []byte, header http.Header)
}

func protocolOf(name string) (*protocol, error) {
	switch name {
	case "", ProtoSori:
		return &protocol{
			needsToken:  true,
			subprotocol: "sori.v1",
			path:        func(string) string { return "/ws" },
			hello: func(tok, ch string) [][]byte {
				return [][]byte{fmt.Appendf(nil, `{"id":1,"op":"connect","token":%q}`+"\n"+`{"id":2,"op":"subscribe","channel":%q}`, tok, ch)}
			},
			subscribed: []byte(`"id":2`),
			publish: func(ch string, data json.RawMessage, key string) (string, []byte, http.Header) {
				b, _ := json.Marshal(map[string]any{"channel": ch, "data": data})
				return "/api/publish", b, http.Header{"Authorization": {"apikey " + key}}
			},
		}, nil
	case ProtoCentrifugo:
		return &protocol{
			path: func(string) string { return "/connection/websocket" },
			hello: func(_, ch string) [][]byte {
				return [][]byte{[]byte(`{"id":1,"connect":{}}`), fmt.Appendf(nil, `{"id":2,"subscribe":{"channel":%q}}`, ch)}
			},
			subscribed: []byte(`"id":2`),
			pong: func(f []byte) []byte {
				if bytes.Equal(bytes.TrimSpace(f), []byte("{}")) { // protocol v2 ping: answer with a pong
					return []byte("{}")
				}
				return nil
			},
			publish: func(ch string, data json.RawMessage, key string) (string, []byte, http.Header) {
				b, _ := json.Marshal(map[string]any{"channel": ch, "data": data})
				return "/api/publish", b, http.Header{"X-API-Key": {key}}
			},
		}, nil
	case ProtoPlain:
		return &protocol{
			path:       func(ch string) string { return "/ws?channel=" + ch },
			hello:      func(string, string) [][]byte { return nil },
			subscribed: []byte(`"subscribed"`),
			publish:    plainPublish,
		}, nil
	case ProtoSocketIO:
		return &protocol{
			path:  func(string) string { return "/socket.io/?EIO=4&transport=websocket" },
			hello: func(string, string) [][]byte { return [][]byte{[]byte("40")} },
			setup: func(f []byte, ch string) []byte {
				if bytes.HasPrefix(f, []byte("40")) { // connected to the namespace: events may follow
					return fmt.Appendf(nil, `42["sub",%q]`, ch)
				}
				return nil
			},
			subscribed: []byte(`"subscribed"`),
			pong: func(f []byte) []byte {
				if len(f) == 1 && f[0] == '2' { // Engine.IO ping
					return []byte("3")
				}
				return nil
			},
			publish: plainPublish,
		}, nil
	}
	return nil, fmt.Errorf("bench: unknown --protocol %q (sori, centrifugo, plain or socketio)", name)
}

func plainPublish(ch string, data json.RawMessage, key string) (string, []byte, http.Header) {
	b, _ := json.Marshal(map[string]any{"channel": ch, "data": data})
	return "/publish", b, http.Header{"X-API-Key": {key}}
}
