package ws_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/session"
	"github.com/sori-dev/sori/internal/transport/ws"
)

// codecClient speaks one codec over the hand-written client: commands are
// written as JSON and, for the binary codec, sent as MessagePack in binary
// frames; what the server sends comes back as a JSON value either way.
type codecClient struct {
	*client
	binary bool
}

func (c codecClient) send(cmd string) {
	c.T.Helper()
	if !c.binary {
		c.Text(cmd)
		return
	}
	m, err := protocol.TranscodeJSON(nil, []byte(cmd))
	if err != nil {
		c.T.Fatal(err)
	}
	c.Write(frame(0x82, m))
}

// next returns the next protocol message, skipping control frames.
func (c codecClient) next() map[string]any {
	c.T.Helper()
	for {
		first, p, err := c.ReadFrame()
		if err != nil {
			c.T.Fatalf("read: %v", err)
		}
		op := first & 0x0f
		if op >= 0x8 {
			continue
		}
		if want := byte(0x1); c.binary && op != 0x2 || !c.binary && op != want {
			c.T.Fatalf("binary codec %v: got opcode %d", c.binary, op)
		}
		if c.binary {
			if p, err = protocol.MsgpackToJSON(nil, p); err != nil {
				c.T.Fatalf("server sent bad MessagePack: %v", err)
			}
		}
		var v map[string]any
		if err := json.Unmarshal(p, &v); err != nil {
			c.T.Fatalf("%s: %v", p, err)
		}
		return v
	}
}

// conformanceScript runs the same exchange in either codec and returns what
// the server sent, without the fields that differ between two servers (and
// expires_in, which counts down in whole seconds from each run's own token).
func conformanceScript(t *testing.T, binary bool) []map[string]any {
	s := startWS(t, session.Config{}, ws.Options{})
	var extra []string
	if binary {
		extra = append(extra, "Sec-WebSocket-Protocol: "+protocol.SubprotocolMsgpack)
	}
	c := codecClient{dial(t, s, nil, extra...), binary}
	want := protocol.Subprotocol
	if binary {
		want = protocol.SubprotocolMsgpack
	}
	if got := c.Resp.Header.Get("Sec-WebSocket-Protocol"); got != want {
		t.Fatalf("negotiated %q, want %q", got, want)
	}
	var out []map[string]any
	step := func(cmd string, replies int) {
		t.Helper()
		c.send(cmd)
		for range replies {
			m := c.next()
			for _, k := range []string{"client", "epoch", "expires_in", "time", "version"} {
				delete(m, k)
				if r, ok := m["result"].(map[string]any); ok {
					delete(r, k)
				}
			}
			out = append(out, m)
		}
	}
	step(`{"id":1,"op":"connect","token":"`+s.token(t, "alice", "news")+`"}`, 1)
	step(`{"id":2,"op":"subscribe","channel":"news"}`, 1)
	step(`{"id":3,"op":"publish","channel":"news","data":{"text":"h\u00e9 \"q\"","n":[1,-2,2.5],"ok":true,"none":null}}`, 2)
	step(`{"id":4,"op":"history","channel":"news","limit":10}`, 1)
	step(`{"id":5,"op":"publish","channel":"bad channel","data":1}`, 1)
	step(`{"id":6,"op":"frobnicate"}`, 1)
	step(`{"id":7,"op":"ping"}`+"\n"+`{"id":8,"op":"unsubscribe","channel":"news"}`, 2)
	// The other codec's frame type is refused: 1003.
	if binary {
		c.Text(`{"id":9,"op":"ping"}`)
	} else {
		c.Write(frame(0x82, []byte{0x80}))
	}
	if code := c.CloseCode(); code != protocol.DisconnectUnsupportedData.Code {
		t.Fatalf("binary %v: wrong frame type closed with %d", binary, code)
	}
	return out
}

// TestCodecConformance: the same commands give the same replies and pushes
// in the JSON codec (sori.v1) and the binary one (sori.v1.msgpack).
func TestCodecConformance(t *testing.T) {
	js := conformanceScript(t, false)
	mp := conformanceScript(t, true)
	if len(js) != 9 {
		t.Fatalf("json: %d messages: %v", len(js), js)
	}
	if !reflect.DeepEqual(js, mp) {
		for i := range max(len(js), len(mp)) {
			var a, b any
			if i < len(js) {
				a = js[i]
			}
			if i < len(mp) {
				b = mp[i]
			}
			if !reflect.DeepEqual(a, b) {
				t.Errorf("message %d:\n json    %v\n msgpack %v", i, a, b)
			}
		}
	}
	// The publication arrived with its data intact, in both.
	for _, m := range js {
		if m["push"] == "pub" {
			d, _ := json.Marshal(m["data"])
			if string(d) != `{"n":[1,-2,2.5],"none":null,"ok":true,"text":"hé \"q\""}` {
				t.Errorf("publication data %s", d)
			}
			return
		}
	}
	t.Errorf("no publication among %v", js)
}
