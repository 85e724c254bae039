//go:build linux

package netpoll

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Supported reports whether this system has a poller.
const Supported = true

// Poller calls Options.Ready for a registered socket each time it was armed
// and became readable, from one goroutine and one epoll instance shared by
// every socket. The goroutine and its file descriptors exist only while
// something is registered: they are created with the first registration and
// released when the last one is removed, so a Poller needs no Close.
//
// Sockets are named in epoll events by slot and generation, never by pointer
// (the kernel's copy is invisible to the garbage collector); a stale event
// for a reused slot carries an old generation and is ignored. Every
// epoll_ctl on a socket runs inside RawConn.Control, which keeps the
// descriptor from being closed and reused meanwhile. A socket closed while
// registered leaves the epoll set by itself, without an event: its owner
// must notice the close on its own (and still call Remove).
//
// The goroutine waits for the epoll instance in Go's own poller (an epoll
// descriptor is itself readable when it has events; OpenEpoll), never in a
// blocking epoll_wait: a goroutine blocked in a system call keeps its P
// until sysmon takes it back, 20 µs to 20 ms later, so with GOMAXPROCS=1 (a
// server pinned to one core) every other goroutine waited that long each
// time the poller went back to waiting, and each take-back reset sysmon to
// waking every 20 µs.
//
// Concurrency: safe for concurrent use. Lock order: mu is a leaf; Ready runs
// on the poller's goroutine without mu held, Sweep with it.
type Poller[T any] struct {
	opts Options[T]

	mu      sync.Mutex
	epfd    int // valid while running
	wakefd  int // eventfd: wakes the goroutine when the last socket leaves
	running bool
	slots   []*T // nil entries are free
	gens    []uint32
	free    []int32
	live    int
}

// NewPoller returns a Poller; o.Ready is required.
func NewPoller[T any](o Options[T]) *Poller[T] {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Sweep == nil {
		o.Interval = 0
	}
	return &Poller[T]{opts: o}
}

const wakeSlot = -1 // the event data of the wake eventfd

// Arm asks for one readiness event of rc's socket, delivered to Ready(x):
// the first Arm of r registers the socket, later ones re-arm it. The event
// may arrive before Arm returns. rc nil: ErrUnsupported.
func (p *Poller[T]) Arm(r *Reg, rc syscall.RawConn, x *T) error {
	if rc == nil {
		return ErrUnsupported
	}
	if r.slot == 0 {
		return p.add(r, rc, x)
	}
	// r.epfd stays valid while r is registered: the goroutine stops only
	// when nothing is. Written under p.mu before r's registration.
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: r.slot - 1, Pad: int32(r.gen)}
	epfd := r.epfd
	var err error
	if cerr := rc.Control(func(fd uintptr) { err = unix.EpollCtl(int(epfd), unix.EPOLL_CTL_MOD, int(fd), &ev) }); cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("netpoll: epoll mod: %w", err)
	}
	return nil
}

// add registers rc's socket for x, starting the goroutine if none runs,
// and arms it.
func (p *Poller[T]) add(r *Reg, rc syscall.RawConn, x *T) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		if err := p.start(); err != nil {
			return err
		}
	}
	var slot int32
	if n := len(p.free); n > 0 {
		slot, p.free = p.free[n-1], p.free[:n-1]
	} else {
		slot = int32(len(p.slots))
		p.slots = append(p.slots, nil)
		p.gens = append(p.gens, 0)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: slot, Pad: int32(p.gens[slot])}
	var err error
	if cerr := rc.Control(func(fd uintptr) { err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev) }); cerr != nil {
		err = cerr
	}
	if err != nil {
		p.free = append(p.free, slot)
		if p.live == 0 {
			p.wake() // the goroutine just started has nothing to watch
		}
		return fmt.Errorf("netpoll: epoll add: %w", err)
	}
	// An event may already be waiting for p.mu: the slot is filled first.
	p.slots[slot] = x
	p.live++
	r.slot, r.gen, r.epfd = slot+1, p.gens[slot], int32(p.epfd)
	return nil
}

// Remove unregisters rc's socket. Call it before closing the socket; once
// it returns, Ready and Sweep are not called for this registration again
// (except a Ready already collected from an event, which may still run).
func (p *Poller[T]) Remove(r *Reg, rc syscall.RawConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.slot == 0 {
		return
	}
	slot, epfd := r.slot-1, r.epfd
	r.slot = 0
	// The epoll descriptor stays valid while live counts us: delete the
	// socket from it before the goroutine may close it.
	_ = rc.Control(func(fd uintptr) { _ = unix.EpollCtl(int(epfd), unix.EPOLL_CTL_DEL, int(fd), nil) })
	p.slots[slot] = nil
	p.gens[slot]++
	p.free = append(p.free, slot)
	p.live--
	if p.live == 0 {
		p.wake()
	}
}

// start creates the epoll instance and the goroutine; p.mu is held.
func (p *Poller[T]) start() error {
	ep, err := OpenEpoll()
	if err != nil {
		return fmt.Errorf("netpoll: %w", err)
	}
	epfd := int(ep.Fd())
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		_ = ep.Close()
		return fmt.Errorf("netpoll: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeSlot}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		_ = unix.Close(wakefd)
		_ = ep.Close()
		return fmt.Errorf("netpoll: epoll add eventfd: %w", err)
	}
	p.epfd, p.wakefd, p.running = epfd, wakefd, true
	go p.run(ep, wakefd)
	return nil
}

// OpenEpoll creates an epoll instance registered with Go's poller, so that
// a goroutine waits for its events (Epoll.Wait) parked like any network
// read, in state "IO wait", holding no thread and no P.
func OpenEpoll() (*Epoll, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll create: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	// A non-blocking descriptor given to os.NewFile joins the runtime
	// poller; an epoll descriptor is readable while it has events.
	f := os.NewFile(uintptr(epfd), "epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("epoll: %w", err)
	}
	e := &Epoll{f: f, rc: rc, fd: epfd}
	e.wait = func(fd uintptr) bool {
		e.n, e.err = unix.EpollWait(int(fd), e.events, 0)
		if errors.Is(e.err, unix.EINTR) {
			e.n, e.err = 0, nil
		}
		return e.n > 0 || e.err != nil
	}
	return e, nil
}

// Epoll is an epoll instance whose waits park the goroutine in Go's poller
// (OpenEpoll). One goroutine at a time may call Wait.
type Epoll struct {
	f      *os.File
	rc     syscall.RawConn
	fd     int
	wait   func(fd uintptr) bool // bound once: no allocation per Wait
	events []unix.EpollEvent     // Wait's argument, for wait
	n      int
	err    error
}

// Fd is the epoll descriptor, for epoll_ctl; valid until Close. (Not
// os.File.Fd, which would put the descriptor back into blocking mode.)
func (e *Epoll) Fd() uintptr { return uintptr(e.fd) }

// Wait fills events with ready events and returns their number, waiting
// until there is at least one or until deadline (the zero time: no
// deadline), when it returns 0 and os.ErrDeadlineExceeded.
func (e *Epoll) Wait(events []unix.EpollEvent, deadline time.Time) (int, error) {
	if err := e.f.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	e.events, e.n, e.err = events, 0, nil
	err := e.rc.Read(e.wait)
	e.events = nil
	if err != nil {
		return 0, err
	}
	return e.n, e.err
}

// Close releases the epoll instance.
func (e *Epoll) Close() error { return e.f.Close() }

// wake makes the goroutine look at p.live; p.mu is held.
func (p *Poller[T]) wake() {
	var one = [8]byte{1}
	_, _ = unix.Write(p.wakefd, one[:])
}

// run is the poller's goroutine: it calls Ready for each socket that became
// readable, sweeps every Interval, and ends when nothing is registered.
func (p *Poller[T]) run(ep *Epoll, wakefd int) {
	events := make([]unix.EpollEvent, 256)
	ready := make([]*T, 0, len(events))
	sweeps := p.opts.Interval > 0
	var nextSweep time.Time // zero: no deadline
	if sweeps {
		nextSweep = time.Now().Add(p.opts.Interval)
	}
	for {
		n, err := ep.Wait(events, nextSweep)
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			p.opts.Log.Error("netpoll: epoll_wait failed", "err", err)
			time.Sleep(10 * time.Millisecond) // do not spin on a persistent error
		}
		ready = ready[:0]
		p.mu.Lock()
		for _, ev := range events[:n] {
			if ev.Fd == wakeSlot {
				var b [8]byte
				_, _ = unix.Read(wakefd, b[:])
				continue
			}
			if int(ev.Fd) < len(p.slots) && p.gens[ev.Fd] == uint32(ev.Pad) {
				if x := p.slots[ev.Fd]; x != nil {
					ready = append(ready, x)
				}
			}
		}
		if sweeps {
			if now := time.Now(); !now.Before(nextSweep) {
				for _, x := range p.slots {
					if x != nil {
						p.opts.Sweep(x, now)
					}
				}
				nextSweep = now.Add(p.opts.Interval)
			}
		}
		if p.live == 0 {
			p.running = false
			p.mu.Unlock()
			_ = unix.Close(wakefd)
			_ = ep.Close()
			return
		}
		p.mu.Unlock()
		for _, x := range ready {
			p.opts.Ready(x)
		}
		clear(ready)
	}
}
