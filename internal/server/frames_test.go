package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/config"
)

// TestMalformedFrames sends broken WebSocket frames from a raw TCP client and
// checks the close code of RFC 6455 §7.4.1; after each the server still
// serves other clients.
func TestMalformedFrames(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.MaxMessageSize = 4096; c.Compression = false })
	tests := []struct {
		name     string
		connect  bool // send a valid connect first
		send     func(rc *rawConn)
		wantCode int
	}{
		{"unmasked frame", false, func(rc *rawConn) { rc.WriteFrame(frameOpts{Op: 0x1, Unmasked: true}, []byte(`{"id":1,"op":"ping"}`)) }, 1002},
		{"reserved data opcode", true, func(rc *rawConn) { rc.WriteFrame(frameOpts{Op: 0x3}, []byte("x")) }, 1002},
		{"reserved control opcode", true, func(rc *rawConn) { rc.WriteFrame(frameOpts{Op: 0xB}, nil) }, 1002},
		{"fragmented ping", true, func(rc *rawConn) { rc.WriteFrame(frameOpts{Op: 0x9, NotFin: true}, []byte("a")) }, 1002},
		{"control frame over 125 bytes", true, func(rc *rawConn) { rc.WriteFrame(frameOpts{Op: 0x9}, make([]byte, 126)) }, 1002},
		{"RSV1 without deflate", true, func(rc *rawConn) { rc.WriteFrame(frameOpts{Op: 0x1, RSV: 0x40}, []byte(`{}`)) }, 1002},
		{"RSV2", true, func(rc *rawConn) { rc.WriteFrame(frameOpts{Op: 0x1, RSV: 0x20}, []byte(`{}`)) }, 1002},
		{"continuation without a message", true, func(rc *rawConn) { rc.WriteFrame(frameOpts{Op: 0x0}, []byte("x")) }, 1002},
		{"new message inside a fragmented one", true, func(rc *rawConn) {
			rc.WriteFrame(frameOpts{Op: 0x1, NotFin: true}, []byte(`{"id":2,`))
			rc.WriteFrame(frameOpts{Op: 0x1}, []byte(`"op":"ping"}`))
		}, 1002},
		{"invalid UTF-8", true, func(rc *rawConn) { rc.Text("{\"id\":2,\"op\":\"ping\",\"client\":\"\xff\"}") }, 1007},
		{"invalid UTF-8 in a first fragment", true, func(rc *rawConn) { rc.WriteFrame(frameOpts{Op: 0x1, NotFin: true}, []byte("\xc0\xaf")) }, 1007},
		{"binary frame", true, func(rc *rawConn) { rc.WriteFrame(frameOpts{Op: 0x2}, []byte(`{"id":2,"op":"ping"}`)) }, 1003},
		{"oversized frame", true, func(rc *rawConn) { rc.Text(`{"id":2,"op":"ping","client":"` + strings.Repeat("x", 5000) + `"}`) }, 1009},
		{"oversized fragmented message", true, func(rc *rawConn) {
			rc.WriteFrame(frameOpts{Op: 0x1, NotFin: true}, []byte(strings.Repeat(" ", 3000)))
			rc.WriteFrame(frameOpts{Op: 0x0}, []byte(strings.Repeat(" ", 3000)))
		}, 1009},
		{"close frame with a one-byte body", true, func(rc *rawConn) { rc.WriteFrame(frameOpts{Op: 0x8}, []byte{3}) }, 1002},
		{"close frame with an invalid code", true, func(rc *rawConn) { rc.WriteFrame(frameOpts{Op: 0x8}, []byte{0x03, 0xED}) }, 1002}, // 1005 must not be sent
		{"bad JSON before connect", false, func(rc *rawConn) { rc.Text(`{"id":1,"op":`) }, 4500},
		{"command before connect", false, func(rc *rawConn) { rc.Text(`{"id":1,"op":"ping"}`) }, 4500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := rawDial(t, ts)
			if tt.connect {
				rc.Connect(ts.token(t, "alice", time.Hour))
			}
			tt.send(rc)
			if code := rc.CloseCode(); code != tt.wantCode {
				t.Fatalf("close code %d, want %d", code, tt.wantCode)
			}
			// The server is unharmed.
			cl := connectAs(t, ts, "bob")
			cl.call(map[string]any{"op": "ping"})
		})
	}
}

// TestFragmentedMessageAndControlFrames checks valid frames that libraries
// rarely send: a fragmented command with a ping between its fragments, a
// multi-byte character split across fragments, and a ping answered by a pong.
func TestFragmentedMessageAndControlFrames(t *testing.T) {
	ts := startServer(t, nil)
	rc := rawDial(t, ts)
	rc.Connect(ts.token(t, "alice", time.Hour))
	rc.WriteFrame(frameOpts{Op: 0x1, NotFin: true}, []byte("{\"id\":2,\"op\":\"ping\",\"client\":\"\xe2"))
	rc.WriteFrame(frameOpts{Op: 0x9}, []byte("hello"))
	rc.WriteFrame(frameOpts{Op: 0x0, NotFin: true}, []byte("\x82"))
	rc.WriteFrame(frameOpts{Op: 0x0}, []byte("\xac\"}"))
	var gotPong, gotReply bool
	for !gotPong || !gotReply {
		first, p, err := rc.ReadFrame()
		op := first & 0x0f // opcode
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		switch {
		case op == 0xA:
			if string(p) != "hello" {
				t.Fatalf("pong payload %q, want the ping's", p)
			}
			gotPong = true
		case op == 0x1:
			if !strings.Contains(string(p), `"id":2,"result"`) {
				t.Fatalf("reply %s", p)
			}
			gotReply = true
		}
	}
	rc.WriteFrame(frameOpts{Op: 0x8}, []byte{0x03, 0xE8, 'b', 'y', 'e'})
	if code := rc.CloseCode(); code != 1000 {
		t.Fatalf("close answer %d, want 1000", code)
	}
}

// TestBadCommands checks numbered errors for bad input after connect; none
// closes the connection.
func TestBadCommands(t *testing.T) {
	ts := startServer(t, nil)
	cl := connectAs(t, ts, "alice", "chat:*")
	tests := []struct {
		frame    string
		wantID   float64
		wantCode float64
	}{
		{`{"id":7,"op":"publish","channel":"x","data":}`, 7, 101},
		{`{"id":8,"op":`, 8, 101},
		{`not json at all`, 0, 101},
		{`{"id":9,"op":"teleport"}`, 9, 102},
		{`{"id":10,"op":"connect"}`, 10, 105},
		{`{"id":11,"op":"unsubscribe","channel":"chat:x"}`, 11, 107},
		{`{"id":12,"op":"subscribe","channel":"no space"}`, 12, 111},
		{`{"id":13,"op":"subscribe","channel":"unknownns:x"}`, 13, 111},
		{`{"id":14,"op":"publish","channel":"feed:x","data":1}`, 14, 104},
		{`{"id":15,"op":"history","channel":"x"}`, 15, 115},
		{`{"id":16,"op":"presence","channel":"feed:x"}`, 16, 115},
		{`{"id":17,"op":"rpc","method":"no.such"}`, 17, 116},
		{`{"id":18,"op":"subscribe","channel":"user:bob"}`, 18, 104},
		{`{"id":19,"op":"publish","channel":"chat:x","data":1}`, 19, 104},
	}
	for _, tt := range tests {
		cl.sendRaw(tt.frame)
		m := cl.next()
		e, _ := m["error"].(map[string]any)
		if m["id"] != tt.wantID || e == nil || e["code"] != tt.wantCode {
			t.Errorf("%s: got %v, want id %v error %v", tt.frame, m, tt.wantID, tt.wantCode)
		}
	}
	// A batch answers each command in order.
	cl.sendRaw("{\"id\":20,\"op\":\"ping\"}\n{\"id\":21,\"op\":\"ping\"}")
	if a, b := cl.next(), cl.next(); a["id"] != 20.0 || b["id"] != 21.0 {
		t.Fatalf("batch replies %v %v", a, b)
	}
	cl.call(map[string]any{"op": "ping"})
}
