package netpoll

import (
	"errors"
	"log/slog"
	"syscall"
	"time"
)

// ErrUnsupported is returned where no poller exists (systems other than
// Linux) or the connection exposes no socket (a TLS connection, a wrapper):
// the caller then waits on a goroutine of its own.
var ErrUnsupported = errors.New("netpoll: readiness of this connection cannot be watched")

// RawConn returns the socket of nc when it exposes one, nil otherwise.
func RawConn(nc any) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil // e.g. a TLS connection: bytes may wait inside it
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// Options configures a Poller of items of type T (the caller's per-socket
// state, e.g. a connection).
type Options[T any] struct {
	// Log receives epoll failures; nil discards them.
	Log *slog.Logger
	// Ready is called on the poller's goroutine, without its lock, once per
	// Arm, when x's socket becomes readable or is hung up. It must not block
	// (it hands the work to a goroutine of its own if there is any), and it
	// may still run while or just after Remove is called.
	Ready func(x *T)
	// Sweep, when set, is called every Interval for every registered x, on
	// the poller's goroutine with the poller's lock held (so that x cannot
	// be removed meanwhile): it must not block nor call the Poller. The
	// WebSocket transport times out parked connections with it, since no
	// Read is pending to carry their deadlines.
	Sweep    func(x *T, now time.Time)
	Interval time.Duration
}

// Reg is one socket's registration in a Poller. Its owner keeps it (it is
// 12 bytes, meant to be embedded in the owner's state, so that a
// registration allocates nothing); the zero value is not registered.
//
// Concurrency: Arm and Remove of one Reg must not run concurrently with Arm
// (the owner serializes them: one reader at a time); Remove may be called
// again, from any goroutine, and then does nothing.
type Reg struct {
	slot int32  // slot+1 in the poller's table; 0: not registered
	gen  uint32 // the slot's generation when registered
	epfd int32  // the epoll instance it is registered with
}

// Registered reports whether r is in a poller.
func (r *Reg) Registered() bool { return r.slot != 0 }

// Watcher delivers one readiness notification per Watch: a one-shot Poller
// whose items are the Watches themselves. The zero value is not usable; call
// New. Safe for concurrent use.
type Watcher struct {
	p *Poller[Watch]
}

// Watch is one socket's registration with a Watcher.
type Watch struct {
	w   *Watcher
	rc  syscall.RawConn
	fn  func()
	reg Reg
}

// New returns a Watcher that logs epoll failures to log (nil: discard).
func New(log *slog.Logger) *Watcher {
	return &Watcher{p: NewPoller(Options[Watch]{Log: log, Ready: func(x *Watch) { x.fn() }})}
}

// Watch calls fn once, on the watcher's goroutine, when rc's socket becomes
// readable or is hung up. fn must not block (it hands the work to a
// goroutine of its own if there is any). It may run at most once, and may
// still run while or just after Stop is called: it must tolerate that.
// rc nil, or no poller on this system: ErrUnsupported.
func (w *Watcher) Watch(rc syscall.RawConn, fn func()) (*Watch, error) {
	if rc == nil {
		return nil, ErrUnsupported
	}
	x := &Watch{w: w, rc: rc, fn: fn}
	if err := w.p.Arm(&x.reg, rc, x); err != nil {
		return nil, err
	}
	return x, nil
}

// Stop unregisters the socket. Call it before closing the socket; calling
// it again does nothing.
func (x *Watch) Stop() { x.w.p.Remove(&x.reg, x.rc) }
