package chat

import "github.com/sori-dev/sori/internal/hub"

// Relay numbers, in this node's counter, a signal another cluster node
// published on a "chat:<room>#live" channel, so the hub delivers it to this
// node's subscribers after what they already got (hub.Relayer). Live
// channels have no shared log: each node numbers what it delivers. ok is
// false for a room channel, whose offsets are the store's.
func (b *Backend) Relay(channel string) (hub.Position, bool) {
	if _, live, ok := parseChannel(channel); !ok || !live {
		return hub.Position{}, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.live[channel]; !ok && len(b.live) >= b.maxLive {
		clear(b.live)
		b.liveEpoch = newLiveEpoch()
	}
	b.live[channel]++
	return hub.Position{Epoch: b.liveEpoch, Offset: b.live[channel]}, true
}

var _ hub.Relayer = (*Backend)(nil)
