//go:build linux

package ws

import (
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// writePoolSupported reports whether this system has non-blocking writes
// for the write pool (Options.WritePool).
const writePoolSupported = true

// writeOp is one non-blocking write. RawConn.Write takes a func; a closure
// over the write's state would be allocated on every write (it escapes into
// the interface call), so the state lives in a pooled writeOp whose method
// value is bound once.
type writeOp struct {
	b   []byte
	n   int
	err error
	fn  func(fd uintptr) bool // op.write
}

var writeOps = sync.Pool{New: func() any {
	op := new(writeOp)
	op.fn = op.write
	return op
}}

// write is the RawConn.Write callback: it writes op.b[op.n:] until the
// socket is full, fails, or takes it all. It always reports done: a full
// socket is the caller's to handle, never a wait.
//
// The write is a raw system call, which the Go scheduler is not told
// about. The socket is non-blocking, so the call returns as soon as the
// kernel has queued what fits (on loopback, ~10 µs: the receiver's side of
// TCP runs in it too). Announced (unix.Write), a call that long is seen by
// sysmon as possibly blocked: with one P (a server pinned to one core)
// sysmon takes the P back during the write, hands it on, and keeps waking
// every 20 µs while that repeats. Profiled in the 1 channel × 1,000
// shape, that was ~15% of the pinned server's CPU (sysmon's sleeps and the
// context switches they cause), for nothing: the write never waits.
func (op *writeOp) write(fd uintptr) bool {
	for op.n < len(op.b) {
		p := op.b[op.n:]
		r, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		m := int(r)
		if e != 0 {
			m = 0
		}
		op.n += m
		switch e {
		case 0:
			if m == 0 {
				return true // nothing taken: treat as full
			}
		case unix.EINTR:
		case unix.EAGAIN:
			return true
		default:
			op.err = e
			return true
		}
	}
	return true
}

// tryWrite writes as much of b as the socket takes now, without waiting:
// n < len(b) with a nil error means the socket's send buffer is full.
func (c *conn) tryWrite(b []byte) (n int, err error) {
	op := writeOps.Get().(*writeOp)
	op.b, op.n, op.err = b, 0, nil
	cerr := c.sock.Write(op.fn)
	n, err = op.n, op.err
	op.b, op.err = nil, nil
	writeOps.Put(op)
	if cerr != nil && err == nil {
		err = cerr
	}
	return n, err
}

// yielder lets the Go scheduler poll the network in the middle of a long
// run of pool writes. The writes are raw system calls (writeOp.write), so
// the scheduler never sees the pool goroutine block, and it polls the
// network only when it has nothing else to run (or sysmon every 10 ms):
// with one P, a publish request or a command arriving during a fan-out to
// 1,000 connections waited for the fan-out's end. yield parks the goroutine
// on an eventfd that it makes readable itself, so the scheduler, with
// nothing else to run, polls the network: that readies this goroutine and
// every socket that became ready meanwhile, and those run in turn. A few
// microseconds per yield (an eventfd write and read, a non-blocking
// epoll_wait); the pool yields every yieldEvery connections.
type yielder struct {
	rc    syscall.RawConn
	armed bool
	fn    func(fd uintptr) bool // y.step, bound once
	f     *os.File              // kept for the descriptor's lifetime
}

// newYielder returns a yielder, or nil when no eventfd can be had.
func newYielder() *yielder {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil
	}
	f := os.NewFile(uintptr(fd), "ws-yield") // non-blocking: joins Go's poller
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil
	}
	y := &yielder{rc: rc, f: f}
	y.fn = y.step
	return y
}

// close releases the eventfd.
func (y *yielder) close() {
	if y != nil {
		_ = y.f.Close()
	}
}

// yield parks until the scheduler has polled the network once.
func (y *yielder) yield() {
	if y == nil {
		return
	}
	y.armed = false
	_ = y.rc.Read(y.fn)
}

// step is the RawConn.Read callback. The first call makes the eventfd
// readable and asks to wait: written after Read's reset of the readiness,
// the event cannot be lost. The next consumes it.
func (y *yielder) step(fd uintptr) bool {
	var b [8]byte
	if !y.armed {
		y.armed = true
		b[0] = 1 // the eventfd counter, little-endian
		if _, err := unix.Write(int(fd), b[:]); err != nil {
			return true // no event will come: do not wait for one
		}
		return false
	}
	_, err := unix.Read(int(fd), b[:])
	return err != unix.EAGAIN
}
