package ws

import (
	"runtime"
	"sync"
)

// Pooled writers (Options.WritePool).
//
// Without a pool, a connection whose queue goes from empty to non-empty gets
// a writer goroutine of its own (Wake → go writeLoop), which ends when the
// queue is empty again: one goroutine creation, schedule and exit per wake,
// and a 2 KiB stack the runtime keeps cached for a while after each. With a
// pool, Wake puts the connection on a ready list that at most
// GOMAXPROCS goroutines serve: each takes a connection, writes what its
// queue holds with non-blocking writes, and takes the next one. A connection
// that becomes ready again while it waits on the list has its new frames
// written in the same batch (coalescing across publications).
//
// A pool goroutine never blocks on a peer: a write the socket cannot take
// whole (the peer reads slowly) is finished by a goroutine of that
// connection, with the write deadline, which then stays the connection's
// writer until its queue is empty (writeLoop) — the slow-consumer handling
// of the unpooled writer, unchanged. A close (its close frame may wait for a
// peer) also runs on the connection's own goroutine. Connections whose
// socket is not exposed (TLS) always use their own goroutine.
//
// Lock order: writePool.mu is a leaf. Wake is called with no lock held
// (docs/locks.md: the session releases queue.mu before telling the
// transport), and no pool goroutine holds mu while writing.
type writePool struct {
	size int
	// spawn, if set, starts each pool goroutine in place of a go statement:
	// tests wrap the goroutine to wait for its end, an event.
	spawn func(run func())

	mu      sync.Mutex
	ready   []*conn // FIFO: ready[head:] wait for a writer
	head    int
	running int // goroutines serving ready; each exits when it finds the list empty
	// yielders are kept for the pool's goroutines (at most size): one is
	// made the first time a goroutine serves yieldEvery connections in a
	// row, and kept, since goroutines come and go with every burst.
	yielders []*yielder
}

// yieldEvery is how many connections a pool goroutine serves between two
// yields to the network (yielder): ~0.3 ms of writes on loopback.
const yieldEvery = 32

func newWritePool() *writePool {
	return &writePool{size: max(1, runtime.GOMAXPROCS(0))}
}

// submit puts c, whose writing flag the caller set, on the ready list and
// starts a goroutine to serve it unless enough already run.
func (p *writePool) submit(c *conn) {
	p.mu.Lock()
	p.ready = append(p.ready, c)
	start := p.running < p.size
	if start {
		p.running++
	}
	p.mu.Unlock()
	if start && p.spawn != nil {
		p.spawn(func() { p.work(nil) })
	} else if start {
		go p.work(nil)
	}
}

// work serves ready connections until the list is empty. again is a
// connection to put back first (it still had frames queued).
func (p *writePool) work(again *conn) {
	var y *yielder
	for served := 1; ; served++ {
		if served%yieldEvery == 0 {
			if y == nil {
				y = p.getYielder()
			}
			y.yield()
		}
		p.mu.Lock()
		if again != nil {
			p.ready = append(p.ready, again)
		}
		if p.head == len(p.ready) {
			if y != nil {
				p.yielders = append(p.yielders, y)
			}
			p.running--
			// Drop the list's memory when it was large (a burst).
			if cap(p.ready) > 1024 {
				p.ready = nil
			} else {
				p.ready = p.ready[:0]
			}
			p.head = 0
			p.mu.Unlock()
			return
		}
		c := p.ready[p.head]
		p.ready[p.head] = nil
		p.head++
		if p.head > 256 && p.head*2 > len(p.ready) {
			n := copy(p.ready, p.ready[p.head:])
			clear(p.ready[n:])
			p.ready, p.head = p.ready[:n], 0
		}
		p.mu.Unlock()
		again = nil
		if c.serveWrite() {
			again = c
		}
	}
}

// getYielder takes a kept yielder or makes one; nil (yield does nothing)
// when no eventfd can be had.
func (p *writePool) getYielder() *yielder {
	p.mu.Lock()
	if n := len(p.yielders); n > 0 {
		y := p.yielders[n-1]
		p.yielders = p.yielders[:n-1]
		p.mu.Unlock()
		return y
	}
	p.mu.Unlock()
	return newYielder()
}
