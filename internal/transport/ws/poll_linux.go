//go:build linux

package ws

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// pollSupported reports whether this system has a poller (Options.Poll).
const pollSupported = true

// poller watches parked connections with one epoll instance and one
// goroutine. It runs only while connections are registered: the goroutine
// and its file descriptors are created with the first registration and
// released when the last one is removed, so a Handler needs no Close.
//
// Connections are named in epoll events by slot and generation, never by
// pointer (the kernel's copy is invisible to the garbage collector); a stale
// event for a reused slot carries an old generation and is ignored.
// Every epoll_ctl on a connection's socket runs inside RawConn.Control, which
// keeps the descriptor from being closed and reused meanwhile.
//
// Lock order: mu is a leaf; no conn lock exists. The goroutine holds mu only
// to look slots up and to sweep.
type poller struct {
	interval time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	epfd    int // valid while running
	wakefd  int // eventfd: wakes the goroutine when the last connection leaves
	running bool
	slots   []*conn // nil entries are free
	gens    []uint32
	free    []int32
	live    int
}

func newPoller(o *Options) *poller {
	return &poller{interval: sweepInterval(o), log: o.Logger}
}

const wakeSlot = -1 // the event data of the wake eventfd

// add registers c, starting the goroutine if none runs, and arms it.
func (p *poller) add(c *conn) error {
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
	if cerr := c.sock.Control(func(fd uintptr) { err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev) }); cerr != nil {
		err = cerr
	}
	if err != nil {
		p.free = append(p.free, slot)
		if p.live == 0 {
			p.wake() // the goroutine just started has nothing to watch
		}
		return fmt.Errorf("epoll add: %w", err)
	}
	p.slots[slot] = c
	p.live++
	c.slot, c.gen, c.epfd = slot, p.gens[slot], int32(p.epfd)
	return nil
}

// start creates the epoll instance and the goroutine; p.mu is held.
func (p *poller) start() error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("epoll create: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		_ = unix.Close(epfd)
		return fmt.Errorf("eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeSlot}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		_ = unix.Close(wakefd)
		_ = unix.Close(epfd)
		return fmt.Errorf("epoll add eventfd: %w", err)
	}
	p.epfd, p.wakefd, p.running = epfd, wakefd, true
	go p.run(epfd, wakefd)
	return nil
}

// arm asks for one readiness event of c's socket (registering it first).
// c.parked is set: the event may arrive before arm returns.
func (p *poller) arm(c *conn) error {
	if c.slot < 0 {
		return p.add(c)
	}
	// p.epfd stays valid while c is registered: the goroutine stops only
	// when no connection is. Written under p.mu before c's registration.
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: c.slot, Pad: int32(c.gen)}
	epfd := c.epfd
	var err error
	if cerr := c.sock.Control(func(fd uintptr) { err = unix.EpollCtl(int(epfd), unix.EPOLL_CTL_MOD, int(fd), &ev) }); cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("epoll mod: %w", err)
	}
	return nil
}

// remove unregisters c (at the end of its connection, on its reader).
func (p *poller) remove(c *conn) {
	if c.slot < 0 {
		return
	}
	epfd := c.epfd
	_ = c.sock.Control(func(fd uintptr) { _ = unix.EpollCtl(int(epfd), unix.EPOLL_CTL_DEL, int(fd), nil) })
	p.mu.Lock()
	p.slots[c.slot] = nil
	p.gens[c.slot]++
	p.free = append(p.free, c.slot)
	p.live--
	if p.live == 0 {
		p.wake()
	}
	p.mu.Unlock()
	c.slot = -1
}

// wake makes the goroutine look at p.live; p.mu is held.
func (p *poller) wake() {
	var one = [8]byte{1}
	_, _ = unix.Write(p.wakefd, one[:])
}

// run is the poller's goroutine: it starts the reader of each connection
// whose socket became readable, sweeps deadlines every interval, and ends
// when no connection is registered.
func (p *poller) run(epfd, wakefd int) {
	events := make([]unix.EpollEvent, 256)
	ready := make([]*conn, 0, len(events))
	msec := int(p.interval / time.Millisecond)
	nextSweep := time.Now().Add(p.interval)
	for {
		n, err := unix.EpollWait(epfd, events, msec)
		if err != nil && !errors.Is(err, unix.EINTR) {
			p.log.Error("websocket poller: epoll_wait failed", "err", err)
			time.Sleep(p.interval) // do not spin on a persistent error
		}
		if err != nil {
			// EINTR (Go's preemption signal interrupts the wait often under
			// load) returns n = -1: events[:n] would panic.
			n = 0
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
				if c := p.slots[ev.Fd]; c != nil {
					ready = append(ready, c)
				}
			}
		}
		if now := time.Now(); !now.Before(nextSweep) {
			p.sweep(now)
			nextSweep = now.Add(p.interval)
		}
		if p.live == 0 {
			p.running = false
			p.mu.Unlock()
			_ = unix.Close(wakefd)
			_ = unix.Close(epfd)
			return
		}
		p.mu.Unlock()
		for _, c := range ready {
			c.wakeReader(false)
		}
		clear(ready)
	}
}

// sweep times out parked connections whose deadline passed; p.mu is held.
func (p *poller) sweep(now time.Time) {
	t := now.UnixNano()
	for _, c := range p.slots {
		if c != nil && c.deadline.Load() <= t && c.rstate.Load() == readerParked {
			c.wakeReader(true)
		}
	}
}
