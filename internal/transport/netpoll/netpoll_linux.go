//go:build linux

package netpoll

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Watcher delivers one readiness notification per Watch. Its goroutine and
// epoll descriptors exist only while something is watched: they are created
// with the first Watch and released when the last one stops, so a Watcher
// needs no Close. The zero value is not usable; call New.
//
// Sockets are named in epoll events by slot and generation, never by pointer
// (the kernel's copy is invisible to the garbage collector); a stale event
// for a reused slot carries an old generation and is ignored. Every epoll_ctl
// on a socket runs inside RawConn.Control, which keeps the descriptor from
// being closed and reused meanwhile.
//
// Concurrency: safe for concurrent use. Lock order: mu is a leaf; callbacks
// run on the watcher's goroutine without mu held.
type Watcher struct {
	log *slog.Logger

	mu      sync.Mutex
	epfd    int // valid while running
	wakefd  int // eventfd: wakes the goroutine when the last watch stops
	running bool
	slots   []*Watch // nil entries are free
	gens    []uint32
	free    []int32
	live    int
}

// Watch is one socket's registration.
type Watch struct {
	w    *Watcher
	rc   syscall.RawConn
	fn   func()
	slot int32
	gen  uint32
	epfd int
}

// New returns a Watcher that logs epoll failures to log (nil: discard).
func New(log *slog.Logger) *Watcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watcher{log: log}
}

const wakeSlot = -1 // the event data of the wake eventfd

// Watch calls fn once, on the watcher's goroutine, when rc's socket becomes
// readable or is hung up. fn must not block (it hands the work to a
// goroutine of its own if there is any). It may run at most once, and may
// still run while or just after Stop is called: it must tolerate that.
// rc nil: ErrUnsupported.
func (w *Watcher) Watch(rc syscall.RawConn, fn func()) (*Watch, error) {
	if rc == nil {
		return nil, ErrUnsupported
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.running {
		if err := w.start(); err != nil {
			return nil, err
		}
	}
	var slot int32
	if n := len(w.free); n > 0 {
		slot, w.free = w.free[n-1], w.free[:n-1]
	} else {
		slot = int32(len(w.slots))
		w.slots = append(w.slots, nil)
		w.gens = append(w.gens, 0)
	}
	x := &Watch{w: w, rc: rc, fn: fn, slot: slot, gen: w.gens[slot], epfd: w.epfd}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: slot, Pad: int32(x.gen)}
	var err error
	if cerr := rc.Control(func(fd uintptr) { err = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev) }); cerr != nil {
		err = cerr
	}
	if err != nil {
		w.free = append(w.free, slot)
		if w.live == 0 {
			w.wake() // the goroutine just started has nothing to watch
		}
		return nil, fmt.Errorf("netpoll: epoll add: %w", err)
	}
	w.slots[slot] = x
	w.live++
	return x, nil
}

// Stop unregisters the socket. Call it before closing the socket; calling
// it again does nothing.
func (x *Watch) Stop() {
	w := x.w
	w.mu.Lock()
	if x.slot < 0 {
		w.mu.Unlock()
		return
	}
	slot := x.slot
	x.slot = -1
	w.slots[slot] = nil
	w.gens[slot]++
	w.free = append(w.free, slot)
	w.live--
	epfd := x.epfd
	// The descriptor stays valid while live > 0 counted us; delete it
	// before the goroutine may close it.
	_ = x.rc.Control(func(fd uintptr) { _ = unix.EpollCtl(epfd, unix.EPOLL_CTL_DEL, int(fd), nil) })
	if w.live == 0 {
		w.wake()
	}
	w.mu.Unlock()
}

// start creates the epoll instance and the goroutine; w.mu is held.
func (w *Watcher) start() error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("netpoll: epoll create: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		_ = unix.Close(epfd)
		return fmt.Errorf("netpoll: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeSlot}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		_ = unix.Close(wakefd)
		_ = unix.Close(epfd)
		return fmt.Errorf("netpoll: epoll add eventfd: %w", err)
	}
	w.epfd, w.wakefd, w.running = epfd, wakefd, true
	go w.run(epfd, wakefd)
	return nil
}

// wake makes the goroutine look at w.live; w.mu is held.
func (w *Watcher) wake() {
	var one = [8]byte{1}
	_, _ = unix.Write(w.wakefd, one[:])
}

// run is the watcher's goroutine: it calls the callback of each socket that
// became readable and ends when nothing is watched.
func (w *Watcher) run(epfd, wakefd int) {
	events := make([]unix.EpollEvent, 128)
	var ready []func()
	for {
		n, err := unix.EpollWait(epfd, events, -1)
		if err != nil && !errors.Is(err, unix.EINTR) {
			w.log.Error("netpoll: epoll_wait failed", "err", err)
			time.Sleep(10 * time.Millisecond) // do not spin on a persistent error
		}
		if err != nil {
			n = 0 // EINTR returns n = -1
		}
		ready = ready[:0]
		w.mu.Lock()
		for _, ev := range events[:n] {
			if ev.Fd == wakeSlot {
				var b [8]byte
				_, _ = unix.Read(wakefd, b[:])
				continue
			}
			if int(ev.Fd) < len(w.slots) && w.gens[ev.Fd] == uint32(ev.Pad) {
				if x := w.slots[ev.Fd]; x != nil {
					ready = append(ready, x.fn)
				}
			}
		}
		if w.live == 0 {
			w.running = false
			w.mu.Unlock()
			_ = unix.Close(wakefd)
			_ = unix.Close(epfd)
			return
		}
		w.mu.Unlock()
		for _, fn := range ready {
			fn()
		}
		clear(ready)
	}
}
