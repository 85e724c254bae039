package hub

import (
	"context"
	"slices"
	"time"

	"github.com/sori-dev/sori/internal/protocol"
)

// The position check (cluster mode): a hole in a channel's offsets is
// repaired when a later publication shows it (repairLater), but a lost
// *last* publication leaves no hole to see until the channel's next one. So
// every SyncEvery the hub asks the log of a batch of channels with local
// subscribers for their newest position and delivers what this node missed.
// Channels are taken round-robin, SyncBatch per round, so the log's load is
// bounded whatever the number of channels: each channel is checked at least
// every ceil(channels / SyncBatch) × SyncEvery.

// Defaults of the position check (Config.SyncEvery, Config.SyncBatch).
const (
	defaultSyncEvery = time.Second
	defaultSyncBatch = 200
)

// TopReader is implemented by a Backend that reads a channel's newest
// position more cheaply than Since does (one small read instead of the
// retained history): the position check asks it first, and reads the
// missed publications only when the top is ahead.
type TopReader interface {
	Top(ctx context.Context, channel string) (Position, error)
}

// checkTimeout bounds one round of the position check.
const checkTimeout = 10 * time.Second

// checkPositions runs one round of the position check. Called from the
// janitor goroutine only (checkCursor is its own).
func (h *Hub) checkPositions() {
	var names []string
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.RLock()
		for name, c := range s.channels {
			c.mu.Lock()
			if len(c.subs) > 0 && c.known && !c.repairing && h.backend(c.ns.Name) != nil {
				names = append(names, name)
			}
			c.mu.Unlock()
		}
		s.mu.RUnlock()
	}
	if len(names) == 0 {
		return
	}
	slices.Sort(names) // a stable order for the round-robin
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	go func() {
		select {
		case <-h.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	start := h.checkCursor % len(names)
	n := min(len(names), h.syncBatch)
	for i := range n {
		if ctx.Err() != nil {
			return
		}
		h.checkChannel(ctx, names[(start+i)%len(names)])
	}
	h.checkCursor = start + n
}

// checkChannel delivers what the log of channel name holds past this
// node's delivered offset.
func (h *Hub) checkChannel(ctx context.Context, name string) {
	c := h.lookChannel(name)
	if c == nil {
		return
	}
	b := h.backend(c.ns.Name)
	if b == nil || !c.known || len(c.subs) == 0 || c.repairing {
		c.mu.Unlock()
		return
	}
	epoch, from := c.epoch, c.offset
	c.mu.Unlock()
	if tr, ok := b.(TopReader); ok {
		top, err := tr.Top(ctx, name)
		if err != nil || top.Offset <= from || (epoch != "" && top.Epoch != epoch) {
			return // up to date, or a reset the next publication or resume handles
		}
	}
	var pubs []protocol.Publication
	var top Position
	var err error
	if epoch == "" && from == 0 {
		// Subscribed while the log was empty: its first publications
		// start the epoch.
		pubs, top, err = b.Last(ctx, name, h.maxRecover)
	} else {
		var ok bool
		pubs, top, ok, err = b.Since(ctx, name, epoch, from, h.maxRecover)
		if err == nil && !ok {
			// The log is ahead but cannot continue from here: what this
			// node missed is gone, or the epoch changed.
			if c = h.lookChannel(name); c != nil {
				if c.known && c.epoch == epoch && c.offset == from {
					h.positionLost(c)
				}
				c.mu.Unlock()
			}
			return
		}
	}
	if err != nil || len(pubs) == 0 {
		return
	}
	if c = h.lookChannel(name); c == nil {
		return
	}
	defer c.mu.Unlock()
	if epoch == "" && c.epoch == "" && c.offset == 0 {
		c.epoch = top.Epoch
	}
	if c.epoch != top.Epoch || (epoch != "" && c.epoch != epoch) {
		return
	}
	for _, p := range pubs {
		h.deliverInOrder(c, p)
	}
	h.repairLater(c)
}
