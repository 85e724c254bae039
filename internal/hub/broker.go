package hub

import (
	"context"
	"time"

	"github.com/sori-dev/sori/internal/protocol"
)

// Broker tells other nodes of the publications this node committed to a
// channel's log (cluster mode; nil on a single node), and of the
// publications to channels without history, which have no log. Delivery is at
// most once and FIFO per node only: the receiving hub orders by offset,
// drops what it already delivered and reads holes from the log (repair), so
// a lost message delays a publication but never loses it while later ones
// follow. Publish must not block.
type Broker interface {
	Publish(channel, epoch string, pub protocol.Publication) error
}

// Relayer is implemented by a Backend whose channels may have no shared
// log in cluster mode (chat's "#live" signals): Relay gives another node's
// publication to channel this node's next offset, and ok is false for the
// channels whose offsets come from the shared log.
type Relayer interface {
	Relay(channel string) (pos Position, ok bool)
}

// handleFleeting delivers another node's publication to a channel without
// history: there is no log to order or repair by, so it is fanned out as it
// comes (at most once, in the publishing node's order) under this node's
// own offsets, which only number what this node's subscribers got.
func (h *Hub) handleFleeting(channel string, pub protocol.Publication) {
	c := h.lookChannel(channel)
	if c == nil {
		return
	}
	defer c.mu.Unlock()
	if c.ns.HistorySize > 0 {
		return // a per-node history (no log configured): the bus does not share it
	}
	c.offset++
	pub.Offset = c.offset
	h.fanOut(c, &pub)
}

// defaultRepairAfter is how long a hole in a durable channel's offsets may
// wait for the missing publication's news before the hub reads it from the
// log (Config.RepairAfter).
const defaultRepairAfter = 100 * time.Millisecond

// repairTimeout bounds one repair read of the log.
const repairTimeout = 10 * time.Second

// HandlePublication delivers a publication another node committed to a
// durable channel (the Broker's receiving side). Channels without local
// subscribers, and publications of another epoch or already delivered, are
// ignored: a later subscriber reads its position from the log. It never
// blocks on I/O, so the bus may call it from its delivery goroutine.
func (h *Hub) HandlePublication(channel, epoch string, pub protocol.Publication) {
	if h.backend(protocol.Namespace(channel)) == nil {
		h.handleFleeting(channel, pub)
		return
	}
	c := h.lookChannel(channel)
	if c == nil {
		return
	}
	defer c.mu.Unlock()
	if r, ok := h.backend(protocol.Namespace(channel)).(Relayer); ok && c.known {
		if pos, ok := r.Relay(channel); ok {
			// A channel the backend numbers per node (no shared log):
			// this node's next offset, in its own epoch.
			if pos.Epoch != c.epoch {
				return // the counters restarted: the subscribers reload
			}
			pub.Offset = pos.Offset
			c.lastUsed = h.now()
			h.deliverInOrder(c, pub)
			return
		}
	}
	if c.known && c.epoch == "" && c.offset == 0 {
		// Subscribed while the log was empty: this is its first epoch.
		c.epoch = epoch
	}
	if !c.known || epoch != c.epoch {
		return
	}
	c.lastUsed = h.now()
	h.deliverInOrder(c, pub)
	h.repairLater(c)
}

// repairLater arms the channel's repair when publications wait behind a
// hole: a Broker may have lost its news, or (on any node) an Append failed
// after its publication committed. Called with c.mu held.
func (h *Hub) repairLater(c *channel) {
	if len(c.pending) == 0 || c.repairing {
		return
	}
	c.repairing = true
	name := c.name
	time.AfterFunc(h.repairAfter, func() { h.repair(name) })
}

// repair reads the publications after the channel's delivered offset from
// the log, outside the channel lock, and delivers them in order (what
// arrived meanwhile is dropped as already delivered). If a hole is left it
// arms itself again.
func (h *Hub) repair(name string) {
	c := h.lookChannel(name)
	if c == nil {
		return // removed: nobody subscribes
	}
	b := h.backend(c.ns.Name)
	if b == nil || len(c.pending) == 0 {
		c.repairing = false
		c.mu.Unlock()
		return
	}
	epoch, from := c.epoch, c.offset
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), repairTimeout)
	pubs, _, ok, err := b.Since(ctx, name, epoch, from, h.maxRecover)
	cancel()
	if c = h.lookChannel(name); c == nil {
		return
	}
	defer c.mu.Unlock()
	c.repairing = false
	if err == nil && !ok && c.epoch == epoch {
		// What this node missed is gone from the log, or the log has
		// another epoch now (it was reset).
		h.positionLost(c)
		return
	}
	if err == nil && c.epoch == epoch {
		for _, p := range pubs {
			h.deliverInOrder(c, p)
		}
	}
	h.repairLater(c) // an error, or more than one page behind: again later
}

// positionLost handles a channel whose delivered position the log can no
// longer continue: its subscribers are sent to resume (Resyncer), and the
// next subscriber starts over from the log's top. Called with c.mu held.
func (h *Hub) positionLost(c *channel) {
	for _, sub := range c.subs {
		if r, ok := sub.s.(Resyncer); ok {
			r.Resync(c.name)
		}
	}
	c.known = false
	clear(c.pending)
}
