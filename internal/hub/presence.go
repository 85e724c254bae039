package hub

import (
	"github.com/sori-dev/sori/internal/protocol"
)

// PresenceBroker is the part of a Broker that makes presence and join/leave
// cluster-wide (optional: a Broker without it keeps presence per node).
//
// Every node keeps its own subscribers' presence (LocalPresence) and, for
// the channels it has, a copy of the other nodes' (remote), learned from
// their join/leave events and from one snapshot asked when the channel is
// created here. The broker must hand this hub one node's events and
// snapshot answers in the order that node sent them (its join/leave after
// its snapshot answer), so that a snapshot never resurrects a client whose
// leave came first.
type PresenceBroker interface {
	// PublishPresence tells the other nodes that a subscriber of this node
	// joined or left channel. Must not block.
	PublishPresence(channel string, join bool, info protocol.ClientInfo)
	// RequestPresence asks every other node for its local presence of
	// channel; the answers come to HandlePresenceSnapshot. Must not block.
	RequestPresence(channel string)
	// GatherPresence asks every live node for its local presence of
	// channel and waits for their answers (bounded by the broker's
	// timeout). Called without hub locks.
	GatherPresence(channel string) []protocol.ClientInfo
}

// remoteMember is a subscriber of another node.
type remoteMember struct {
	info protocol.ClientInfo
	node string
}

func (h *Hub) presenceBroker() PresenceBroker {
	pb, _ := h.broker.(PresenceBroker)
	return pb
}

// LocalPresence returns this node's subscribers of channel (what a node
// answers another's presence question with).
func (h *Hub) LocalPresence(channel string) []protocol.ClientInfo {
	c := h.lookChannel(channel)
	out := []protocol.ClientInfo{}
	if c == nil {
		return out
	}
	defer c.mu.Unlock()
	for _, info := range c.presence {
		out = append(out, info)
	}
	return out
}

// HandlePresence applies another node's join or leave to channel, when this
// node has it, and pushes it to local subscribers of a join_leave
// namespace. Never blocks on I/O.
func (h *Hub) HandlePresence(channel, node string, join bool, info protocol.ClientInfo) {
	c := h.lookChannel(channel)
	if c == nil {
		return
	}
	defer c.mu.Unlock()
	if !c.ns.Presence {
		return
	}
	if join {
		if m, ok := c.remote[info.Client]; ok && m.node == node {
			return // already known (from the snapshot)
		}
		if c.remote == nil {
			c.remote = map[string]remoteMember{}
		}
		c.remote[info.Client] = remoteMember{info: info, node: node}
	} else {
		delete(c.remote, info.Client)
	}
	h.pushJoinLeave(c, join, info)
}

// HandlePresenceSnapshot adds what another node answered about channel to
// the copy of its presence (no pushes: those clients were there before).
func (h *Hub) HandlePresenceSnapshot(channel, node string, infos []protocol.ClientInfo) {
	c := h.lookChannel(channel)
	if c == nil {
		return
	}
	defer c.mu.Unlock()
	if !c.ns.Presence {
		return
	}
	for _, info := range infos {
		if _, ok := c.remote[info.Client]; !ok {
			if c.remote == nil {
				c.remote = map[string]remoteMember{}
			}
			c.remote[info.Client] = remoteMember{info: info, node: node}
		}
	}
}

// HandleNodeGone drops a node's subscribers from every channel's presence
// and pushes their leaves: the node died or lost the cluster, and its
// clients reconnect elsewhere (where they join again).
func (h *Hub) HandleNodeGone(node string) {
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.RLock()
		chans := make([]*channel, 0, len(s.channels))
		for _, c := range s.channels {
			chans = append(chans, c)
		}
		s.mu.RUnlock()
		for _, c := range chans {
			c.mu.Lock()
			for id, m := range c.remote {
				if m.node == node {
					delete(c.remote, id)
					h.pushJoinLeave(c, false, m.info)
				}
			}
			c.mu.Unlock()
		}
	}
}

// HandleNodeBack asks for fresh snapshots of every presence channel after a
// node that was declared gone speaks again (its clients may still be there).
func (h *Hub) HandleNodeBack() {
	pb := h.presenceBroker()
	if pb == nil {
		return
	}
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.RLock()
		var names []string
		for name, c := range s.channels {
			if c.ns.Presence {
				names = append(names, name)
			}
		}
		s.mu.RUnlock()
		for _, name := range names {
			pb.RequestPresence(name)
		}
	}
}

// pushJoinLeave pushes a join or leave to c's subscribers when the
// namespace asks for it. Called with c.mu held.
func (h *Hub) pushJoinLeave(c *channel, join bool, info protocol.ClientInfo) {
	if !c.ns.JoinLeave || len(c.subs) == 0 {
		return
	}
	kind := protocol.PushLeave
	if join {
		kind = protocol.PushJoin
	}
	frame := protocol.EncodeJoinLeave(kind, c.name, info)
	for _, o := range c.subs {
		o.s.Deliver(frame, "", 0)
	}
}
