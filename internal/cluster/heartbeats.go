package cluster

import (
	"time"
)

// peer is another node as this node knows it from its messages.
type peer struct {
	last time.Time // when it was last heard from
	gone bool      // declared gone (silent past the timeout, or said bye)
}

// heard records a sign of life of node. A node declared gone that speaks
// again is back (a stopped process continued, a partition healed).
func (n *NATS) heard(node string) {
	n.mu.Lock()
	p := n.peers[node]
	back := false
	hello := p == nil
	if p == nil {
		p = &peer{}
		n.peers[node] = p
	} else if p.gone {
		p.gone, back = false, true
	}
	p.last = time.Now()
	n.mu.Unlock()
	if hello {
		// A new node learns of this one now, not at the next beat.
		n.send(ControlSubject, Control{Kind: KindHeartbeat})
	}
	if back {
		n.log.Info("cluster: node is back", "node", node)
		if ch := n.ctl.Load(); ch != nil && ch.Back != nil {
			ch.Back(node)
		}
	}
}

// gone declares node gone once and tells the handler.
func (n *NATS) gone(node string, ch *ControlHandler) {
	n.mu.Lock()
	p := n.peers[node]
	if p == nil {
		p = &peer{}
		n.peers[node] = p
	}
	was := p.gone
	p.gone = true
	// A gone node answers no presence question: stop waiting for it.
	for _, w := range n.waiters {
		if w.want[node] {
			delete(w.want, node)
			if len(w.want) == 0 {
				close(w.done)
			}
		}
	}
	n.mu.Unlock()
	if !was {
		n.log.Warn("cluster: node gone", "node", node)
		if ch != nil && ch.Gone != nil {
			ch.Gone(node)
		}
	}
}

// Heartbeats sends this node's heartbeat every `every` and declares gone
// every node not heard from for `timeout` (its clients then leave every
// channel's presence on this node). It runs until Close.
func (n *NATS) Heartbeats(every, timeout time.Duration) {
	n.send(ControlSubject, Control{Kind: KindHeartbeat})
	t := time.NewTicker(every)
	defer t.Stop()
	prev := time.Now()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		n.send(ControlSubject, Control{Kind: KindHeartbeat})
		now := time.Now()
		// A tick later than the timeout means this node was the silent one
		// (SIGSTOP, a starved process): the others' beats wait unread in
		// the inbox. Give them a fresh timeout instead of declaring every
		// one gone and pushing leaves for all their clients.
		away := now.Sub(prev) > timeout
		prev = now
		var silent []string
		n.mu.Lock()
		for id, p := range n.peers {
			if away && !p.gone {
				p.last = now
			} else if !p.gone && now.Sub(p.last) > timeout {
				silent = append(silent, id)
			}
		}
		n.mu.Unlock()
		for _, id := range silent {
			n.gone(id, n.ctl.Load())
		}
	}
}

// Peers returns the nodes this node currently counts as alive.
func (n *NATS) Peers() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for id, p := range n.peers {
		if !p.gone {
			out = append(out, id)
		}
	}
	return out
}

// IsGone reports whether node was declared gone (silent past the timeout,
// or said bye) and has not spoken since. A node never heard of is not gone:
// a node that just started has not heard the others' heartbeats yet.
func (n *NATS) IsGone(node string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.peers[node]
	return p != nil && p.gone
}
