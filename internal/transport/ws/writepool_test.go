package ws

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/session"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	return server, client
}

// pooledConn is a conn whose writer is p.
func pooledConn(t *testing.T, p *writePool, server net.Conn, opts *Options) (*conn, *recordingPeer) {
	t.Helper()
	peer := &recordingPeer{done: make(chan struct{})}
	c := &conn{nc: server, peer: peer, opts: opts, slot: -1, wp: p, wc: rawConnOf(server)}
	if c.wc == nil {
		t.Fatal("a TCP connection exposes no socket")
	}
	return c, peer
}

// readFrames reads n frames from r and returns their payloads.
func readFrames(t *testing.T, r net.Conn, n int) [][]byte {
	t.Helper()
	var h header
	scratch := make([]byte, 14)
	out := make([][]byte, 0, n)
	_ = r.SetReadDeadline(time.Now().Add(10 * time.Second))
	for range n {
		if err := readHeader(r, scratch, &h); err != nil {
			t.Fatalf("read: %v", err)
		}
		p := make([]byte, h.length)
		if _, err := io.ReadFull(r, p); err != nil {
			t.Fatalf("read: %v", err)
		}
		out = append(out, p)
	}
	return out
}

// waitIdle waits until c has no writer (an event, bounded by 10 s).
func waitIdle(t *testing.T, c *conn) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.writing.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the writer did not finish")
		}
		time.Sleep(time.Millisecond)
	}
}

// Many connections, each woken several times, are written by the pool in
// order, and once their queues are empty no goroutine is left: the pool's
// goroutines end with the work, and none was started per connection.
func TestWritePoolWritesInOrderAndLeavesNoGoroutine(t *testing.T) {
	if !writePoolSupported {
		t.Skip("no write pool on this system")
	}
	opts := &Options{}
	opts.setDefaults(time.Second)
	p := &writePool{size: 2}
	const conns, waves = 32, 5
	runtime.GC()
	before := runtime.NumGoroutine()
	cs := make([]*conn, conns)
	peers := make([]*recordingPeer, conns)
	clients := make([]net.Conn, conns)
	for i := range cs {
		var server net.Conn
		server, clients[i] = tcpPair(t)
		cs[i], peers[i] = pooledConn(t, p, server, opts)
	}
	for w := range waves {
		for i, c := range cs {
			peers[i].mu.Lock()
			peers[i].queue = append(peers[i].queue, session.Frame{Data: []byte(strconv.Itoa(w))})
			peers[i].mu.Unlock()
			c.Wake()
		}
	}
	for i, cl := range clients {
		got := readFrames(t, cl, waves)
		for w, f := range got {
			if string(f) != strconv.Itoa(w) {
				t.Fatalf("conn %d: frame %d is %q", i, w, f)
			}
		}
	}
	for _, c := range cs {
		waitIdle(t, c)
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after the writes, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(time.Millisecond)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running != 0 || p.head != len(p.ready) {
		t.Fatalf("pool not drained: running %d, %d waiting", p.running, len(p.ready)-p.head)
	}
}

// A peer that stops reading does not hold the pool: its connection is handed
// to a goroutine of its own, and another connection served by the same
// one-goroutine pool still gets its frame while the slow peer reads nothing.
// When the session then gives up on the slow peer (4001), the close frame
// reaches it after at most a little of the backlog.
func TestWritePoolSlowPeerDoesNotBlockOthers(t *testing.T) {
	if !writePoolSupported {
		t.Skip("no write pool on this system")
	}
	opts := &Options{CloseTimeout: 10 * time.Second}
	opts.setDefaults(time.Second)
	p := &writePool{size: 1}
	slowServer, slowClient := tcpPair(t)
	_ = slowServer.(*net.TCPConn).SetWriteBuffer(16 << 10)
	_ = slowClient.(*net.TCPConn).SetReadBuffer(16 << 10)
	slow, slowPeer := pooledConn(t, p, slowServer, opts)
	const frames, size = 1024, 4 << 10 // a 4 MiB backlog: far more than the socket buffers
	for range frames {
		slowPeer.queue = append(slowPeer.queue, session.Frame{Data: bytes.Repeat([]byte("x"), size)})
	}
	slow.Wake()

	fastServer, fastClient := tcpPair(t)
	fast, fastPeer := pooledConn(t, p, fastServer, opts)
	fastPeer.mu.Lock()
	fastPeer.queue = append(fastPeer.queue, session.Frame{Data: []byte("hello")})
	fastPeer.mu.Unlock()
	fast.Wake()
	if got := readFrames(t, fastClient, 1); string(got[0]) != "hello" {
		t.Fatalf("fast peer got %q", got[0])
	}
	waitIdle(t, fast)
	if !slow.writing.Load() {
		t.Fatal("the slow peer's backlog was written whole: the test proves nothing")
	}

	slow.Close(protocol.DisconnectSlowConsumer)
	var h header
	scratch := make([]byte, 14)
	data := 0
	_ = slowClient.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if err := readHeader(slowClient, scratch, &h); err != nil {
			t.Fatalf("read: %v", err)
		}
		if _, err := io.CopyN(io.Discard, slowClient, h.length); err != nil {
			t.Fatalf("read: %v", err)
		}
		if h.op == opClose {
			break
		}
		data += int(h.length)
	}
	if data > frames*size/4 {
		t.Fatalf("%d KiB of the %d KiB backlog before the close frame", data>>10, frames*size>>10)
	}
	waitIdle(t, slow)
}
