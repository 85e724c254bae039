package ws

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/session"
)

// TestZcacheSharesOnlyTheSameFrame: the same publication (same bytes object)
// is deflated once per window size; another frame with equal content but
// other bytes, or the same bytes for another window, gets its own entry, and
// every result inflates back to its frame.
func TestZcacheSharesOnlyTheSameFrame(t *testing.T) {
	zc := new(zcache)
	a := []byte(`{"push":"pub","data":"` + strings.Repeat("abc", 100) + `"}`)
	b := append([]byte(nil), a...)
	za := zc.compress(a, 15)
	if za2 := zc.compress(a, 15); &za2[0] != &za[0] {
		t.Fatal("the same frame was deflated twice")
	}
	if zb := zc.compress(b, 15); &zb[0] == &za[0] {
		t.Fatal("an equal frame in other bytes was served from another frame's entry")
	}
	if z9 := zc.compress(a, 9); &z9[0] == &za[0] {
		t.Fatal("another window was served from the 15-bit entry")
	}
	for bits, z := range map[int][]byte{15: zc.compress(a, 15), 9: zc.compress(a, 9)} {
		out, far, err := inflateTracking(z)
		if err != nil || !bytes.Equal(out, a) || far > 1<<bits {
			t.Fatalf("bits %d: %v, %d bytes back", bits, err, far)
		}
	}
}

// discardConn is a net.Conn whose writes succeed and vanish.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error)      { return len(p), nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkDeflateFanout writes one publication to 1,000 connections that
// negotiated permessage-deflate, as the writers of a fan-out do; one op is
// one publication to all of them. "shared" deflates it once (zcache),
// "per-conn" once per connection as before.
func BenchmarkDeflateFanout(b *testing.B) {
	for _, shared := range []bool{true, false} {
		name := map[bool]string{true: "shared", false: "per-conn"}[shared]
		b.Run(name, func(b *testing.B) {
			opts := &Options{Compression: true}
			opts.setDefaults(time.Second)
			if !shared {
				opts.zc = nil
			}
			conns := make([]*conn, 1000)
			for i := range conns {
				conns[i] = &conn{nc: discardConn{}, peer: &recordingPeer{}, opts: opts, deflate: true, deflateBits: 15}
			}
			b.ResetTimer()
			for i := range b.N {
				data := []byte(fmt.Sprintf(`{"push":"pub","channel":"room:1","offset":%d,"data":{"text":"%s"}}`, i, strings.Repeat("hello sori ", 40)))
				frames := []session.Frame{{Data: data, PublishedAt: 1}}
				for _, c := range conns {
					if err := c.writeFrames(frames); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// TestZcacheConcurrentWriters: writers of many connections deflate the same
// publications at once (run with -race); each gets its frame's bytes back.
func TestZcacheConcurrentWriters(t *testing.T) {
	zc := new(zcache)
	frames := make([][]byte, 64)
	for i := range frames {
		frames[i] = []byte(fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, strings.Repeat("z", 200+i)))
	}
	done := make(chan error, 8)
	for range 8 {
		go func() {
			for range 20 {
				for _, f := range frames {
					if out, err := decompress(zc.compress(f, 15), 1<<20); err != nil || !bytes.Equal(out, f) {
						done <- fmt.Errorf("frame %.20q came back as %.20q (%v)", f, out, err)
						return
					}
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
