package ws

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/goleak"

	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/session"
	"github.com/sori-dev/sori/internal/transport/netpoll"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recordingPeer is a Peer that keeps the messages it is handed and queues
// the control frames the loop asks for.
type recordingPeer struct {
	mu       sync.Mutex
	messages [][]byte
	queue    []session.Frame
	closed   int
	reason   protocol.Disconnect
	done     chan struct{} // closed by the first Closed
}

func (p *recordingPeer) Handle(msg []byte) (protocol.Disconnect, bool) {
	p.mu.Lock()
	p.messages = append(p.messages, append([]byte(nil), msg...))
	p.mu.Unlock()
	return protocol.Disconnect{}, false
}

func (p *recordingPeer) Drain() []session.Frame {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.queue
	p.queue = nil
	return out
}

func (p *recordingPeer) Idle() {}

func (p *recordingPeer) Pending() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue) > 0
}

func (p *recordingPeer) Wrote(int, int, int64) {}

func (p *recordingPeer) SendControl(op byte, payload []byte) {
	p.mu.Lock()
	p.queue = append(p.queue, session.Frame{Control: op, Data: append([]byte(nil), payload...)})
	p.mu.Unlock()
}

func (p *recordingPeer) Closed(d protocol.Disconnect) {
	p.mu.Lock()
	p.closed++
	p.reason = d
	if p.closed == 1 {
		close(p.done)
	}
	p.mu.Unlock()
}

const fuzzMaxMessage = 1024

// runLoop feeds input to a connection's frame loop over an in-memory pipe and
// returns what the peer saw once the loop has ended.
func runLoop(t testing.TB, input []byte, deflate bool) *recordingPeer {
	server, client := net.Pipe()
	peer := &recordingPeer{done: make(chan struct{})}
	opts := &Options{MaxMessageSize: fuzzMaxMessage, IdleTimeout: time.Second, CloseTimeout: 20 * time.Millisecond}
	opts.setDefaults(time.Second)
	c := &conn{nc: server, peer: peer, opts: opts, deflate: deflate, deflateBits: 15}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _, _ = io.Copy(io.Discard, client) }()
	go func() {
		defer wg.Done()
		_, _ = client.Write(input)
		_ = client.Close()
	}()
	c.readLoop() // continues on fresh goroutines after each message
	return finishLoop(t, c, peer, &wg)
}

func finishLoop(t testing.TB, c *conn, peer *recordingPeer, wg *sync.WaitGroup) *recordingPeer {
	select {
	case <-peer.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the frame loop did not end")
	}
	wg.Wait()
	for c.writing.Load() { // the writer goroutine ends on its own once the pipe is closed
		time.Sleep(time.Millisecond)
	}
	peer.mu.Lock() // the loop is over; this orders its writes before the caller's reads
	defer peer.mu.Unlock()
	return peer
}

// parkedPrefix is the message runLoopPolled sends first, to get the
// connection parked before the input arrives.
var parkedPrefix = []byte(`{"id":0,"op":"ping"}`)

// runLoopPolled is runLoop over a loopback TCP connection parked in a
// poller (Options.Poll): one message, then, once the connection waits in the
// poller with no goroutine, the input. The frame loop resumes on the
// poller's goroutine hand-off; the first recorded message is the prefix.
func runLoopPolled(t testing.TB, input []byte, deflate bool) *recordingPeer {
	if !netpoll.Supported {
		t.Skip("no poller on this system")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	peer := &recordingPeer{done: make(chan struct{})}
	opts := &Options{MaxMessageSize: fuzzMaxMessage, IdleTimeout: time.Second, CloseTimeout: 20 * time.Millisecond}
	opts.setDefaults(time.Second)
	c := &conn{nc: server, peer: peer, opts: opts, deflate: deflate, deflateBits: 15,
		pl: newPoller(opts), sock: netpoll.RawConn(server)}
	if writePoolSupported {
		c.wp = newWritePool() // replies and pongs go through the pooled writer
	}
	if c.sock == nil {
		t.Fatal("a TCP connection exposes no socket")
	}
	if _, err := client.Write(clientFrame(0x81, parkedPrefix)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _, _ = io.Copy(io.Discard, client) }()
	c.readLoop()
	// The reader parks once the prefix is handled and nothing follows
	// (or ends, if parking failed: then the test fails below).
	for c.rstate.Load() != readerParked {
		select {
		case <-peer.done:
			t.Fatalf("the connection ended before parking: %+v", peer.reason)
		case <-time.After(time.Millisecond):
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = client.Write(input)
		_ = client.(*net.TCPConn).CloseWrite()
	}()
	defer client.Close()
	return finishLoop(t, c, peer, &wg)
}

// clientFrame builds a masked client frame.
func clientFrame(first byte, payload []byte) []byte {
	b := []byte{first}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	mask := [4]byte{0x12, 0x34, 0x56, 0x78}
	b = append(b, mask[:]...)
	for i, c := range payload {
		b = append(b, c^mask[i%4])
	}
	return b
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestLoopDeliversMessages(t *testing.T) {
	input := concat(
		clientFrame(0x81, []byte(`{"id":1,"op":"ping"}`)),
		clientFrame(0x01, []byte(`{"id":2,`)),
		clientFrame(0x89, []byte("ping!")),
		clientFrame(0x80, []byte(`"op":"ping"}`)),
		clientFrame(0x88, []byte{0x03, 0xE8}),
	)
	peer := runLoop(t, input, false)
	if len(peer.messages) != 2 || string(peer.messages[1]) != `{"id":2,"op":"ping"}` {
		t.Fatalf("messages %q", peer.messages)
	}
	if peer.closed != 1 || peer.reason.Code != 1000 {
		t.Fatalf("closed %d times with %+v", peer.closed, peer.reason)
	}
}

func TestLoopInflatesCompressedMessages(t *testing.T) {
	msg := bytes.Repeat([]byte("compressible "), 50)
	peer := runLoop(t, clientFrame(0xC1, compress(nil, msg, 15)), true)
	if len(peer.messages) != 1 || !bytes.Equal(peer.messages[0], msg) {
		t.Fatalf("messages %q", peer.messages)
	}
	bomb := compress(nil, make([]byte, 10*fuzzMaxMessage), 15)
	peer = runLoop(t, clientFrame(0xC1, bomb), true)
	if len(peer.messages) != 0 || peer.reason.Code != 1009 {
		t.Fatalf("deflate bomb: messages %d, close %+v", len(peer.messages), peer.reason)
	}
}

// FuzzFrameLoop feeds arbitrary bytes to the frame loop, with and without
// permessage-deflate: it must never panic or hang, must hand the peer only
// complete, valid UTF-8 messages within the size limit, and must report the
// connection's end exactly once.
func FuzzFrameLoop(f *testing.F) {
	f.Add(concat(clientFrame(0x81, []byte(`{"id":1,"op":"ping"}`)), clientFrame(0x88, []byte{0x03, 0xE8})), false)
	f.Add(concat(clientFrame(0x01, []byte("ab")), clientFrame(0x89, nil), clientFrame(0x80, []byte("cd"))), false)
	f.Add(clientFrame(0xC1, compress(nil, []byte("hello hello hello"), 15)), true)
	f.Add(clientFrame(0x82, []byte{0, 1, 2}), false)
	f.Add([]byte{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'}, false) // unmasked
	f.Add(clientFrame(0x8B, nil), false)                      // reserved control opcode
	f.Add(clientFrame(0x09, []byte("x")), false)              // fragmented ping
	f.Add(clientFrame(0x81, []byte("\xff")), false)           // invalid UTF-8
	f.Add(clientFrame(0x81, bytes.Repeat([]byte("x"), 2000)), false)
	f.Add(append([]byte{0x81, 0xFF}, bytes.Repeat([]byte{0xff}, 12)...), false)
	// Issue 9 cases: a code point split over fragments (valid), invalid bytes
	// in a later fragment or cut off mid-frame (1007 at once), close frames
	// that fail the connection, an oversized frame followed by more data.
	f.Add(concat(clientFrame(0x01, []byte("a\xe2\x82")), clientFrame(0x80, []byte("\xac"))), false)
	f.Add(concat(clientFrame(0x01, []byte("a")), clientFrame(0x00, []byte("\xf4\x90")), clientFrame(0x80, []byte("\x80\x80"))), false)
	f.Add(clientFrame(0x01, []byte("a\xe0\x80")), false)
	f.Add(clientFrame(0x81, []byte("ok\xff and more that never arrives"))[:9], false)
	f.Add(clientFrame(0x88, append([]byte{0x03, 0xE8}, bytes.Repeat([]byte("x"), 124)...)), false)
	f.Add(clientFrame(0x88, []byte{0x03}), false)
	f.Add(clientFrame(0x88, []byte{0x03, 0xE8, 0xff}), false)
	f.Add(concat(clientFrame(0x81, bytes.Repeat([]byte("x"), 2000)), clientFrame(0x81, []byte("after"))), false)
	f.Add(concat(clientFrame(0xC1, compress(nil, []byte("a\xe2\x82\xac"), 15)), clientFrame(0xC1, compress(nil, []byte("\xff"), 15))), true)
	f.Fuzz(func(t *testing.T, input []byte, deflate bool) {
		peer := runLoop(t, input, deflate)
		for _, m := range peer.messages {
			if len(m) > fuzzMaxMessage || !utf8.Valid(m) {
				t.Fatalf("peer got a message of %d bytes, valid UTF-8 %v", len(m), utf8.Valid(m))
			}
		}
		if peer.closed != 1 {
			t.Fatalf("Closed called %d times", peer.closed)
		}
		// The same bytes arriving at a connection parked in the poller give
		// the same messages and the same end.
		polled := runLoopPolled(t, input, deflate)
		if polled.closed != 1 {
			t.Fatalf("parked: Closed called %d times", polled.closed)
		}
		if len(polled.messages) == 0 || !bytes.Equal(polled.messages[0], parkedPrefix) {
			t.Fatalf("parked: messages %q", polled.messages)
		}
		got := polled.messages[1:]
		if len(got) != len(peer.messages) {
			t.Fatalf("parked: %d messages, over a pipe %d", len(got), len(peer.messages))
		}
		for i := range got {
			if !bytes.Equal(got[i], peer.messages[i]) {
				t.Fatalf("parked: message %d is %q, over a pipe %q", i, got[i], peer.messages[i])
			}
		}
		if polled.reason.Code != peer.reason.Code {
			t.Fatalf("parked: ended with %+v, over a pipe %+v", polled.reason, peer.reason)
		}
	})
}
