package cluster

import (
	"errors"
	"sync"

	"github.com/sori-dev/sori/internal/protocol"
)

// MemNet is the in-memory twin of NATS for tests of one process: every
// MemBus on it hears the others' publications, at most once and in FIFO
// order per publisher, as over NATS core. Drop, when set, loses the
// messages for which it returns true (to test repair).
type MemNet struct {
	mu    sync.Mutex
	nodes []*MemBus
	Drop  func(to string, channel string, pub protocol.Publication) bool
}

// MemBus is one node's Bus on a MemNet. Each node delivers from its own
// goroutine, so a handler never runs on the publisher's goroutine.
type MemBus struct {
	net    *MemNet
	nodeID string
	h      Handler
	queue  chan message
	done   chan struct{}
	once   sync.Once
	closed chan struct{}
}

var _ Bus = (*MemBus)(nil)

// Join adds node nodeID to the network, delivering to h.
func (n *MemNet) Join(nodeID string, h Handler) *MemBus {
	b := &MemBus{net: n, nodeID: nodeID, h: h, queue: make(chan message, 1024), done: make(chan struct{}), closed: make(chan struct{})}
	go b.run()
	n.mu.Lock()
	n.nodes = append(n.nodes, b)
	n.mu.Unlock()
	return b
}

func (b *MemBus) run() {
	defer close(b.done)
	for {
		select {
		case m := <-b.queue:
			b.h(m.Channel, m.Epoch, m.Pub)
		case <-b.closed:
			return
		}
	}
}

// ErrBusClosed is returned by Publish after Close.
var ErrBusClosed = errors.New("cluster: bus closed")

// Publish implements Bus. A full queue drops the message, as a slow
// consumer does on NATS.
func (b *MemBus) Publish(channel, epoch string, pub protocol.Publication) error {
	select {
	case <-b.closed:
		return ErrBusClosed
	default:
	}
	b.net.mu.Lock()
	defer b.net.mu.Unlock()
	for _, o := range b.net.nodes {
		if o == b || (b.net.Drop != nil && b.net.Drop(o.nodeID, channel, pub)) {
			continue
		}
		select {
		case o.queue <- message{Channel: channel, Epoch: epoch, Origin: b.nodeID, Pub: pub}:
		default:
		}
	}
	return nil
}

// Close implements Bus.
func (b *MemBus) Close() error {
	b.once.Do(func() {
		close(b.closed)
		b.net.mu.Lock()
		for i, o := range b.net.nodes {
			if o == b {
				b.net.nodes = append(b.net.nodes[:i], b.net.nodes[i+1:]...)
				break
			}
		}
		b.net.mu.Unlock()
	})
	<-b.done
	return nil
}
