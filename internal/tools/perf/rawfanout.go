package perf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
)

// RawFanout is the baseline for fan-out: a TCP server that sends each
// published frame, prefixed with a 2-byte length, to every accepted
// connection. It coalesces exactly as Sori's WebSocket transport does: frames
// are appended to a per-connection pending buffer under a lock, a writer
// goroutine is started on demand when the buffer was empty, and it writes
// everything pending in one write call. What it leaves out is everything Sori
// adds on top: channels, offsets, history, sessions, metrics, WebSocket
// framing rules.
//
// It is safe for concurrent use.
type RawFanout struct {
	ln net.Listener

	mu    sync.Mutex
	conns []*rawConn
	wg    sync.WaitGroup
}

// rawBufs holds pending buffers, 16 KiB like Sori's write buffers.
var rawBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

type rawConn struct {
	nc      net.Conn
	mu      sync.Mutex
	pending []byte
	spare   []byte
	writing bool
	dead    bool
}

// ListenRawFanout starts the harness on a loopback port.
func ListenRawFanout() (*RawFanout, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("perf: raw fan-out listen: %w", err)
	}
	r := &RawFanout{ln: ln}
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

// NewRawFanout returns a harness without a listener: connections join it
// through Add.
func NewRawFanout() *RawFanout { return &RawFanout{} }

// Add makes nc one of the harness's subscriber connections.
func (r *RawFanout) Add(nc net.Conn) {
	r.mu.Lock()
	r.conns = append(r.conns, &rawConn{nc: nc})
	r.mu.Unlock()
}

// Addr returns the harness's address.
func (r *RawFanout) Addr() string { return r.ln.Addr().String() }

func (r *RawFanout) accept() {
	defer r.wg.Done()
	for {
		nc, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.Add(nc)
	}
}

// Conns returns how many connections were accepted.
func (r *RawFanout) Conns() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

// Publish appends the frame for payload to every connection's pending buffer
// and wakes the idle writers. payload must be at most 64 KiB.
func (r *RawFanout) Publish(payload []byte) { r.PublishGroup(0, 1, payload) }

// PublishGroup is Publish to the connections whose accept order i has
// i % groups == group: the harness's stand-in for a channel.
func (r *RawFanout) PublishGroup(group, groups int, payload []byte) {
	var hdr [2]byte
	binary.BigEndian.PutUint16(hdr[:], uint16(len(payload)))
	r.mu.Lock()
	conns := r.conns
	r.mu.Unlock()
	for i := group; i < len(conns); i += groups {
		c := conns[i]
		c.mu.Lock()
		if c.dead {
			c.mu.Unlock()
			continue
		}
		wake := !c.writing
		if c.pending == nil {
			c.pending = (*rawBufs.Get().(*[]byte))[:0]
		}
		c.pending = append(append(c.pending, hdr[:]...), payload...)
		c.writing = true
		c.mu.Unlock()
		if wake {
			r.wg.Add(1)
			go c.writeLoop(&r.wg)
		}
	}
}

func (c *rawConn) writeLoop(wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		c.mu.Lock()
		if len(c.pending) == 0 {
			c.writing = false
			// An idle connection keeps no buffers, as in Sori.
			for _, b := range [][]byte{c.pending, c.spare} {
				if b != nil {
					b = b[:0]
					rawBufs.Put(&b)
				}
			}
			c.pending, c.spare = nil, nil
			c.mu.Unlock()
			return
		}
		b := c.pending
		c.pending = c.spare[:0]
		c.mu.Unlock()
		_, err := c.nc.Write(b)
		c.mu.Lock()
		c.spare = b
		if err != nil {
			c.dead, c.writing, c.pending = true, false, nil
			c.mu.Unlock()
			_ = c.nc.Close()
			return
		}
		c.mu.Unlock()
	}
}

// Close stops accepting, closes every connection and waits for the writers.
func (r *RawFanout) Close() error {
	var err error
	if r.ln != nil {
		err = r.ln.Close()
	}
	r.mu.Lock()
	for _, c := range r.conns {
		_ = c.nc.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
