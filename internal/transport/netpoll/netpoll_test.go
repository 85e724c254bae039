package netpoll_test

import (
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/transport/netpoll"
)

func pair(t *testing.T) (server, client net.Conn) {
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

// TestWatchReportsThePeerLeaving watches two idle sockets: the callback of
// the one whose peer closes runs (once); the other's does not, and after its
// Stop nothing is watched, so the watcher's goroutine ends.
func TestWatchReportsThePeerLeaving(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("epoll: Linux only")
	}
	w := netpoll.New(nil)
	s1, c1 := pair(t)
	s2, _ := pair(t)
	fired := make(chan int, 4)
	x1, err := w.Watch(netpoll.RawConn(s1), func() { fired <- 1 })
	if err != nil {
		t.Fatal(err)
	}
	x2, err := w.Watch(netpoll.RawConn(s2), func() { fired <- 2 })
	if err != nil {
		t.Fatal(err)
	}
	_ = c1.Close()
	select {
	case n := <-fired:
		if n != 1 {
			t.Fatalf("callback %d ran, want 1 (its peer closed)", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no readiness within 10 s of the peer closing")
	}
	x1.Stop()
	x2.Stop()
	x2.Stop() // again: nothing
	select {
	case n := <-fired:
		t.Fatalf("callback %d ran again", n)
	default:
	}
	// goleak-style: the goroutine ends once nothing is watched; a new
	// Watch starts it again.
	s3, c3 := pair(t)
	if _, err := w.Watch(netpoll.RawConn(s3), func() { fired <- 3 }); err != nil {
		t.Fatal(err)
	}
	_, _ = c3.Write([]byte("x"))
	if n := <-fired; n != 3 {
		t.Fatalf("callback %d ran, want 3", n)
	}
}

func TestWatchWithoutSocket(t *testing.T) {
	if _, err := netpoll.New(nil).Watch(nil, func() {}); err != netpoll.ErrUnsupported {
		t.Fatalf("Watch(nil) = %v, want ErrUnsupported", err)
	}
	type wrapped struct{ net.Conn }
	if rc := netpoll.RawConn(wrapped{}); rc != nil {
		t.Fatal("RawConn of a wrapper without a socket is not nil")
	}
}

type item struct {
	reg   netpoll.Reg
	ready chan struct{}
}

// TestPollerRearmsAndSweeps: a Poller's registration fires once per Arm (a
// re-arm with bytes still unread fires again: readiness is the level, not
// the edge), Sweep visits every registered item, and Remove unregisters.
func TestPollerRearmsAndSweeps(t *testing.T) {
	if !netpoll.Supported {
		t.Skip("no poller on this system")
	}
	swept := make(chan *item, 1)
	p := netpoll.NewPoller(netpoll.Options[item]{
		Ready: func(x *item) { x.ready <- struct{}{} },
		Sweep: func(x *item, _ time.Time) {
			select {
			case swept <- x:
			default:
			}
		},
		Interval: 5 * time.Millisecond,
	})
	s, c := pair(t)
	rc := netpoll.RawConn(s)
	x := &item{ready: make(chan struct{}, 4)}
	if err := p.Arm(&x.reg, rc, x); err != nil {
		t.Fatal(err)
	}
	if !x.reg.Registered() {
		t.Fatal("not registered after Arm")
	}
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		select {
		case <-x.ready:
		case <-time.After(10 * time.Second):
			t.Fatalf("readiness %d did not arrive", i+1)
		}
		if i < 2 {
			if err := p.Arm(&x.reg, rc, x); err != nil { // the byte is still unread
				t.Fatal(err)
			}
		}
	}
	select {
	case got := <-swept:
		if got != x {
			t.Fatal("swept another item")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no sweep within 10 s")
	}
	p.Remove(&x.reg, rc)
	p.Remove(&x.reg, rc) // again: nothing
	if x.reg.Registered() {
		t.Fatal("registered after Remove")
	}
	// A fresh registration starts the goroutine again.
	y := &item{ready: make(chan struct{}, 1)}
	if err := p.Arm(&y.reg, rc, y); err != nil {
		t.Fatal(err)
	}
	select {
	case <-y.ready:
	case <-time.After(10 * time.Second):
		t.Fatal("no readiness after registering again")
	}
	p.Remove(&y.reg, rc)
	select {
	case <-x.ready:
		t.Fatal("the removed registration fired")
	default:
	}
}

// TestPollerWaitsInTheRuntimePoller: the poller's goroutine waits for its
// epoll instance parked in Go's poller ("IO wait"), not in a blocking
// epoll_wait ("syscall"), with and without sweeps. A goroutine blocked in a
// system call keeps its P until sysmon takes it back; with GOMAXPROCS=1 (a
// server pinned to one core) every other goroutine waited up to 20 ms each
// time the poller went back to waiting. Its wait still ends on readiness
// and on the sweep interval.
func TestPollerWaitsInTheRuntimePoller(t *testing.T) {
	if !netpoll.Supported {
		t.Skip("no poller on this system")
	}
	for _, interval := range []time.Duration{0, time.Hour, 5 * time.Millisecond} {
		swept := make(chan struct{}, 1)
		p := netpoll.NewPoller(netpoll.Options[item]{
			Ready: func(x *item) { x.ready <- struct{}{} },
			Sweep: func(*item, time.Time) {
				select {
				case swept <- struct{}{}:
				default:
				}
			},
			Interval: interval,
		})
		s, c := pair(t)
		rc := netpoll.RawConn(s)
		x := &item{ready: make(chan struct{}, 1)}
		if err := p.Arm(&x.reg, rc, x); err != nil {
			t.Fatal(err)
		}
		if st := waitForGoroutine(t, "netpoll.(*Poller[...]).run"); st != "IO wait" {
			t.Fatalf("interval %v: the poller's goroutine waits in state %q, want \"IO wait\" (parked in Go's poller)", interval, st)
		}
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		<-x.ready
		if interval == 5*time.Millisecond {
			<-swept
		}
		p.Remove(&x.reg, rc)
	}
}

// waitForGoroutine returns the state ("IO wait", "syscall", …) of a
// goroutine whose stack has fn once it is blocked: runtime.Stack shows a
// goroutine on a CPU as "running" or "runnable", so this waits for it to
// settle (an event, not a time). It fails the test after 10 s.
func waitForGoroutine(t *testing.T, fn string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 1<<20)
	for time.Now().Before(deadline) {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if !strings.Contains(g, fn) {
				continue
			}
			head, _, _ := strings.Cut(g, "\n") // "goroutine 7 [IO wait, 2 minutes]:"
			_, st, _ := strings.Cut(head, "[")
			st, _, _ = strings.Cut(st, "]")
			st, _, _ = strings.Cut(st, ",")
			if st != "running" && st != "runnable" {
				return st
			}
		}
		runtime.Gosched()
	}
	t.Fatalf("no blocked goroutine running %s within 10 s", fn)
	return ""
}
