package ws

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/session"
	"github.com/sori-dev/sori/internal/transport/netpoll"
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

// idlePeer is a recordingPeer that reports each Idle call on idle: a
// writer calls Idle last, right before it drops the writing flag, once the
// queue is empty.
type idlePeer struct {
	*recordingPeer
	idle chan struct{}
}

func (p idlePeer) Idle() {
	select {
	case p.idle <- struct{}{}:
	default:
	}
}

// pooledConn is a conn whose writer is p.
func pooledConn(t *testing.T, p *writePool, server net.Conn, opts *Options) (*conn, idlePeer) {
	t.Helper()
	peer := idlePeer{&recordingPeer{done: make(chan struct{})}, make(chan struct{}, 1)}
	c := &conn{nc: server, peer: peer, opts: opts, wp: p, sock: netpoll.RawConn(server)}
	if c.sock == nil {
		t.Fatal("a TCP connection exposes no socket")
	}
	return c, peer
}

// trackPool makes p's goroutines count in a WaitGroup, so that a test can
// wait for all of them to end (an event) once it has woken every connection.
func trackPool(p *writePool) *sync.WaitGroup {
	var wg sync.WaitGroup
	p.spawn = func(run func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run()
		}()
	}
	return &wg
}

// waitPool waits for every goroutine trackPool counted to end.
func waitPool(t *testing.T, wg *sync.WaitGroup) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the pool's goroutines did not end")
	}
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

// writerGoroutines counts the goroutines in a connection's writer or a
// write pool's.
func writerGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			stacks := string(buf[:n])
			return strings.Count(stacks, "ws.(*conn).writeLoop(") + strings.Count(stacks, "ws.(*writePool).work(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// waitIdle waits for c's writer to find the queue empty (its Idle call).
func waitIdle(t *testing.T, peer idlePeer) {
	t.Helper()
	select {
	case <-peer.idle:
	case <-time.After(10 * time.Second):
		t.Fatal("the writer did not finish")
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
	pool := trackPool(p)
	before := writerGoroutines()
	const conns, waves = 32, 5
	cs := make([]*conn, conns)
	peers := make([]idlePeer, conns)
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
	// Every Wake (and so every pool goroutine's start) happened above.
	waitPool(t, pool)
	for i, c := range cs {
		if c.writing.Load() {
			t.Fatalf("conn %d still has a writer after the pool ended", i)
		}
	}
	// No writer of a connection of its own was started either: no more
	// goroutines are in the package's writers than before the test (other
	// tests' connections may still be ending theirs).
	if after := writerGoroutines(); after > before {
		t.Fatalf("%d goroutines in a writer after the pool ended, %d before", after, before)
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
	pool := trackPool(p)
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
	waitIdle(t, fastPeer)
	waitPool(t, pool) // the pool is free: slow has a writer of its own
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
	waitIdle(t, slowPeer)
}

// TestTryWriteAllocatesNothing: a pooled write allocates nothing. Its
// callback used to be a closure escaping into RawConn.Write, three
// allocations per write, about one per delivery when nothing coalesces.
func TestTryWriteAllocatesNothing(t *testing.T) {
	if !writePoolSupported {
		t.Skip("no write pool on this system")
	}
	if raceOn {
		t.Skip("the race detector allocates on its own")
	}
	server, client := tcpPair(t)
	go func() { _, _ = io.Copy(io.Discard, client) }()
	opts := &Options{}
	opts.setDefaults(time.Second)
	c := &conn{nc: server, opts: opts, sock: netpoll.RawConn(server)}
	frame := []byte("\x81\x05hello")
	var failed error
	allocs := testing.AllocsPerRun(200, func() {
		if n, err := c.tryWrite(frame); err != nil || n != len(frame) {
			failed = fmt.Errorf("tryWrite = %d, %v; want %d, nil", n, err, len(frame))
		}
	})
	if failed != nil {
		t.Fatal(failed)
	}
	if allocs != 0 {
		t.Fatalf("%.1f allocations per tryWrite, want 0", allocs)
	}
}

// TestYielderLetsTheNetworkIn: with one P, a goroutine that never blocks
// (the pool writing with raw system calls) keeps a goroutine waiting for
// its socket from running until sysmon polls the network (10 ms) or it ends.
// yield parks it until the scheduler has polled the network: a reader whose
// socket became readable has run once the writer goes on.
func TestYielderLetsTheNetworkIn(t *testing.T) {
	if !writePoolSupported {
		t.Skip("no write pool on this system")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	y := newYielder()
	if y == nil {
		t.Fatal("no yielder")
	}
	defer y.close()
	server, client := tcpPair(t)
	reading := make(chan struct{})
	read := make(chan struct{})
	go func() {
		close(reading)
		var b [1]byte
		if _, err := server.Read(b[:]); err == nil {
			close(read)
		}
	}()
	<-reading // the reader runs (and goes on to park in Read) while this waits
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	for range 3 { // several yields in a row, as the pool does
		y.yield()
	}
	runtime.Gosched() // the reader, readied by the poll, runs before this goes on
	select {
	case <-read:
	default:
		t.Fatal("the reader whose socket became readable did not run during the yields")
	}
}
