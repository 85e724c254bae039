package ws_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/session"
	"github.com/sori-dev/sori/internal/transport/ws"
)

// longClose is a close timeout far above the 10 s the test client waits: a
// server that waits for anything during a close shows as a client timeout.
var longClose = ws.Options{MaxMessageSize: 4096, CloseTimeout: time.Minute, Compression: true}

// Issue 9.13: a client listing several permessage-deflate offers gets at most
// one accepted; two in the response make a conforming client fail the
// handshake (RFC 7692 §5.1).
func TestDeflateAcceptsOneOfSeveralOffers(t *testing.T) {
	s := startWS(t, session.Config{}, ws.Options{Compression: true})
	for _, offer := range []string{
		"permessage-deflate; client_max_window_bits, permessage-deflate",
		"permessage-deflate, permessage-deflate; server_no_context_takeover",
		"permessage-deflate; client_max_window_bits=99, permessage-deflate", // the first is malformed: the second is taken
	} {
		c := dial(t, s, nil, "Sec-WebSocket-Extensions: "+offer)
		got := strings.Join(c.Resp.Header.Values("Sec-WebSocket-Extensions"), ", ")
		if n := strings.Count(got, "permessage-deflate"); n != 1 {
			t.Errorf("offer %q: response extensions %q accept %d offers, want 1", offer, got, n)
		}
		// And the accepted one works: a compressed command is understood.
		c.Write(compressedFrame(t, `{"id":1,"op":"ping"}`))
		c.Reply(`"id":1`)
	}
}

// Issue 9.14: invalid UTF-8 closes the connection (1007) as soon as the
// invalid byte arrives, not when its frame or message is complete.
func TestInvalidUTF8FailsFast(t *testing.T) {
	s := startWS(t, session.Config{}, longClose)
	tests := []struct {
		name string
		send func(c *client)
	}{
		{"inside an unfinished frame", func(c *client) {
			// A 100-byte frame sent up to its invalid byte only.
			head := `{"id":2,"x":"`
			f := frame(0x81, []byte(head+"\xff"+strings.Repeat("a", 85)+`"}`))
			c.Write(f[:6+len(head)+1])
		}},
		{"in a second fragment before its end", func(c *client) {
			c.Write(frame(0x01, []byte(`{"id":2,"x":"`)))
			f := frame(0x00, []byte("\xf4\x90"+strings.Repeat("a", 50))) // above U+10FFFF
			c.Write(f[:6+2])
		}},
		{"a code point cut at a fragment boundary and completed wrongly", func(c *client) {
			c.Write(frame(0x01, []byte(`{"id":2,"x":"`+"\xe2\x82")))
			f := frame(0x00, []byte("\x28"+strings.Repeat("a", 50))) // '(' cannot continue €
			c.Write(f[:6+1])
		}},
		{"an overlong prefix at the end of a fragment", func(c *client) {
			c.Write(frame(0x01, []byte(`{"id":2,"x":"`+"\xe0\x80"))) // E0 80 can only be overlong
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, s, nil)
			c.Connect(s.token(t, "alice"))
			tt.send(c)
			if code := c.CloseCode(); code != 1007 {
				t.Fatalf("close code %d, want 1007", code)
			}
		})
	}
}

// A code point split over three fragments, and over the chops of one frame,
// is valid and reaches the session whole.
func TestUTF8SplitAcrossFragmentsAndChops(t *testing.T) {
	s := startWS(t, session.Config{}, longClose)
	c := dial(t, s, nil)
	c.Connect(s.token(t, "alice"))
	c.Write(frame(0x01, []byte(`{"id":2,"op":"ping","client":"`+"\xf0")))
	c.Write(frame(0x00, []byte("\x9f\x98")))
	c.Write(frame(0x80, []byte("\x80\"}")))
	c.Reply(`"id":2,"result"`)
	f := frame(0x81, []byte(`{"id":3,"op":"ping","client":"`+"\xe2\x82\xac"+`"}`))
	cut := 6 + len(`{"id":3,"op":"ping","client":"`) + 1 // inside €
	c.Write(f[:cut])                                     // the two writes may or may not arrive in one read; both must work
	c.Write(f[cut:])
	c.Reply(`"id":3,"result"`)
}

// Issue 9.15: after failing a connection on a close frame, the server sends
// its close frame and ends the TCP connection at once: the client already
// sent its close, so there is nothing to wait for.
func TestFailedCloseFrameEndsAtOnce(t *testing.T) {
	s := startWS(t, session.Config{}, longClose)
	for _, tt := range []struct {
		name    string
		payload []byte
		want    int
	}{
		{"payload over 125 bytes", append([]byte{0x03, 0xE8}, bytes.Repeat([]byte("x"), 124)...), 1002},
		{"one-byte payload", []byte{0x03}, 1002},
		{"invalid code", []byte{0x03, 0xED}, 1002},
		{"invalid UTF-8 reason", []byte{0x03, 0xE8, 0xff}, 1007},
		{"valid", []byte{0x03, 0xE8}, 1000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, s, nil)
			c.Connect(s.token(t, "alice"))
			c.Write(frame(0x88, tt.payload))
			if code := c.CloseCode(); code != tt.want {
				t.Fatalf("close code %d, want %d", code, tt.want)
			}
			if err := c.EOF(); !errors.Is(err, io.EOF) {
				t.Fatalf("after the close exchange the server kept the connection open: %v", err)
			}
		})
	}
}

// Issue 9.15: a client that keeps sending after the server failed the
// connection still gets the close frame: the server must not reset the
// connection under it by closing with unread data.
func TestCloseFrameSurvivesAClientStillSending(t *testing.T) {
	s := startWS(t, session.Config{}, ws.Options{MaxMessageSize: 4096, CloseTimeout: 5 * time.Second})
	for i := range 5 {
		c := dial(t, s, nil)
		c.Connect(s.token(t, "alice"))
		// Oversized messages back to back: the first fails the connection
		// (1009); the rest arrive while the server is closing.
		big := frame(0x81, bytes.Repeat([]byte("x"), 256<<10))
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range 8 {
				_ = c.NC.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.NC.Write(big); err != nil {
					return
				}
			}
		}()
		<-done
		if code := c.CloseCode(); code != 1009 {
			t.Fatalf("round %d: close code %d, want 1009", i, code)
		}
	}
}

// Issue 9.16: an offer asking for a smaller server window is accepted, and
// what the server sends never refers further back than that window.
func TestDeflateSmallServerWindow(t *testing.T) {
	s := startWS(t, session.Config{}, ws.Options{Compression: true})
	for _, bits := range []int{8, 9, 10, 12, 15} {
		c := dial(t, s, nil, fmt.Sprintf("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=%d", bits))
		got := c.Resp.Header.Get("Sec-WebSocket-Extensions")
		if !strings.Contains(got, "permessage-deflate") || !strings.Contains(got, fmt.Sprintf("server_max_window_bits=%d", bits)) {
			t.Fatalf("bits %d: response extensions %q, want the offer accepted with its window", bits, got)
		}
		c.Connect(s.token(t, "alice"))
		c.Text(`{"id":2,"op":"subscribe","channel":"w"}`)
		c.Reply(`"id":2,"result"`)
		// Repetitive data whose repeats lie further apart than small windows.
		var b strings.Builder
		for i := range 300 {
			fmt.Fprintf(&b, "item-%03d-abcdefghijklmnopqrstuvwxyz ", i%37)
		}
		data := fmt.Sprintf(`{"t":%q}`, b.String())
		if _, err := s.hub.Publish(context.Background(), "w", []byte(data), ""); err != nil {
			t.Fatal(err)
		}
		for {
			first, p, err := c.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if first&0x0f != 0x1 {
				continue
			}
			if first&0x40 == 0 {
				t.Fatalf("bits %d: a %d-byte publication was not compressed", bits, len(p))
			}
			out, far, err := ws.InflateTrackingDistance(p)
			if err != nil {
				t.Fatalf("bits %d: inflate: %v", bits, err)
			}
			if far > 1<<bits {
				t.Fatalf("bits %d: a back-reference reaches %d bytes back, beyond the %d-byte window", bits, far, 1<<bits)
			}
			if !strings.Contains(string(out), data) {
				t.Fatalf("bits %d: inflated %q", bits, out)
			}
			break
		}
	}
}

func compressedFrame(t *testing.T, msg string) []byte {
	t.Helper()
	z := ws.Compress([]byte(msg))
	b := frame(0xC1, z)
	return b
}

// A connection refused by the node (here the per-IP limit, 4503) gets its
// close frame even when it sent frames before reading the answer: closing
// with them unread would reset the connection under the close frame.
func TestRefusedConnectionGetsItsCloseFrame(t *testing.T) {
	s := startWS(t, session.Config{MaxConnectionsPerIP: 1}, ws.Options{CloseTimeout: 5 * time.Second})
	first := dial(t, s, nil)
	first.Connect(s.token(t, "alice"))
	for i := range 5 {
		c := dial(t, s, nil)
		// Commands sent at once, before reading anything.
		for range 8 {
			c.Write(frame(0x81, []byte(`{"id":1,"op":"connect","token":"`+strings.Repeat("t", 8000)+`"}`)))
		}
		if code := c.CloseCode(); code != 4503 {
			t.Fatalf("round %d: close code %d, want 4503", i, code)
		}
	}
}
