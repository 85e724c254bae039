package cluster

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sori-dev/sori/internal/protocol"
)

// ControlSubject carries the cluster-wide control messages: heartbeats,
// presence, and actions on a user's connections wherever they are.
const ControlSubject = "sori.ctl"

// ToSubject is where messages addressed to one node go (presence answers).
func ToSubject(node string) string { return "sori.to." + node }

// inboxSize bounds the messages waiting for the dispatch goroutine; past it
// NATS drops (a slow consumer), which repair and the next heartbeat cover.
const inboxSize = 1 << 16

// Kinds of control messages.
const (
	KindHeartbeat   = "hb"      // a node is alive
	KindBye         = "bye"     // a node leaves: its clients are gone
	KindJoin        = "join"    // Channel, Clients[0] subscribed on Origin
	KindLeave       = "leave"   // Channel, Clients[0] unsubscribed on Origin
	KindPresenceAsk = "pres?"   // who is on Channel? answer with KindPresence to Origin
	KindPresence    = "pres"    // Origin's subscribers of Channel, answering ID
	KindDisconnect  = "disc"    // close User's connections with Code/Reason/Reconnect
	KindUnsubscribe = "unsub"   // end User's subscriptions to Channel with Code/Reason
	KindAck         = "ack"     // Origin did what question ID asked
	KindRevoke      = "revoke"  // User's credentials were revoked: Gen, At say which tokens died
	KindMembers     = "members" // the membership of user UserID in chat room Room changed
	KindQuery       = "q?"      // answer question Channel (a topic) with KindAnswer to Origin
	KindAnswer      = "q"       // Origin's answer (Data) to question ID
)

// Control is one control message.
type Control struct {
	Kind      string                `json:"k"`
	Origin    string                `json:"o"`
	ID        string                `json:"id,omitempty"`
	Channel   string                `json:"c,omitempty"`
	User      string                `json:"u,omitempty"`
	Clients   []protocol.ClientInfo `json:"cl,omitempty"`
	Code      int                   `json:"code,omitempty"`
	Reason    string                `json:"r,omitempty"`
	Reconnect bool                  `json:"re,omitempty"`
	// Gen and At (Unix microseconds) are the user's credentials generation
	// and change time after a revocation, Disabled whether the account is
	// disabled (KindRevoke).
	Gen      int64 `json:"gen,omitempty"`
	At       int64 `json:"at,omitempty"`
	Disabled bool  `json:"off,omitempty"` // the account is disabled (KindRevoke)
	// Data is a question's argument (KindQuery) or its answer (KindAnswer).
	Data json.RawMessage `json:"d,omitempty"`
	// Room and UserID name a membership (KindMembers).
	Room   int64 `json:"room,omitempty"`
	UserID int64 `json:"uid,omitempty"`
}

// ControlHandler receives the control messages of other nodes that the
// bus does not handle itself (everything but heartbeats and presence
// answers to this node's own questions). It runs on the dispatch goroutine
// and must not block.
type ControlHandler struct {
	Control func(Control)
	// Gone is told when a node stopped beating (or said bye); Back when a
	// node declared gone beats again.
	Gone, Back func(node string)
	// Snapshot is told every presence answer (also those gathered for a
	// question of this node).
	Snapshot func(channel, node string, clients []protocol.ClientInfo)
	// Presence answers another node's question with this node's local
	// subscribers of channel.
	Presence func(channel string) []protocol.ClientInfo
	// Query answers another node's question on topic, with its argument
	// (Ask), with this node's JSON answer.
	Query func(topic string, arg json.RawMessage) json.RawMessage
	// Disconnected and Reconnected are told when the NATS connection drops
	// and comes back: messages in between are lost.
	Disconnected, Reconnected func()
}

// OnControl sets the handler of control messages. Until it is set they are
// dropped (nobody is connected to this node yet).
func (n *NATS) OnControl(h ControlHandler) { n.ctl.Store(&h) }

// Broadcast sends a control message to every other node. It never blocks on
// the network; delivery is at most once.
func (n *NATS) Broadcast(c Control) { n.send(ControlSubject, c) }

func (n *NATS) send(subject string, c Control) {
	c.Origin = n.nodeID
	b, err := json.Marshal(c)
	if err != nil {
		n.log.Warn("cluster: encode control message", "kind", c.Kind, "err", err)
		return
	}
	if err := n.nc.Publish(subject, b); err != nil {
		n.log.Debug("cluster: control message not sent", "kind", c.Kind, "err", err)
	}
}

// dispatch handles what arrives, in arrival order, until Close.
func (n *NATS) dispatch(h Handler) {
	defer close(n.stopped)
	for {
		var m *nats.Msg
		select {
		case m = <-n.inbox:
		case <-n.stop:
			return
		}
		if m.Subject == Subject {
			var msg message
			if err := json.Unmarshal(m.Data, &msg); err != nil || msg.Channel == "" {
				n.log.Warn("cluster: dropped a malformed bus message", "err", err)
				continue
			}
			if msg.Origin == n.nodeID {
				continue // another connection with our id: never deliver twice
			}
			n.heard(msg.Origin)
			h(msg.Channel, msg.Epoch, msg.Pub)
			continue
		}
		var c Control
		if err := json.Unmarshal(m.Data, &c); err != nil || c.Origin == "" {
			n.log.Warn("cluster: dropped a malformed control message", "err", err)
			continue
		}
		if c.Origin == n.nodeID {
			continue
		}
		n.control(c)
	}
}

func (n *NATS) control(c Control) {
	ch := n.ctl.Load()
	if c.Kind == KindBye {
		n.gone(c.Origin, ch)
		return
	}
	n.heard(c.Origin)
	if ch == nil {
		return
	}
	switch c.Kind {
	case KindHeartbeat:
	case KindPresenceAsk:
		var clients []protocol.ClientInfo
		if ch.Presence != nil {
			clients = ch.Presence(c.Channel)
		}
		n.send(ToSubject(c.Origin), Control{Kind: KindPresence, ID: c.ID, Channel: c.Channel, Clients: clients})
	case KindPresence:
		if ch.Snapshot != nil {
			ch.Snapshot(c.Channel, c.Origin, c.Clients)
		}
		n.answered(c)
	case KindAck, KindAnswer:
		n.answered(c)
	case KindQuery:
		var data json.RawMessage
		if ch.Query != nil {
			data = ch.Query(c.Channel, c.Data)
		}
		n.send(ToSubject(c.Origin), Control{Kind: KindAnswer, ID: c.ID, Data: data})
	default:
		if ch.Control != nil {
			ch.Control(c)
		}
		if c.ID != "" {
			n.send(ToSubject(c.Origin), Control{Kind: KindAck, ID: c.ID})
		}
	}
}

// PublishPresence implements hub.PresenceBroker.
func (n *NATS) PublishPresence(channel string, join bool, info protocol.ClientInfo) {
	kind := KindLeave
	if join {
		kind = KindJoin
	}
	n.Broadcast(Control{Kind: kind, Channel: channel, Clients: []protocol.ClientInfo{info}})
}

// RequestPresence implements hub.PresenceBroker.
func (n *NATS) RequestPresence(channel string) {
	n.Broadcast(Control{Kind: KindPresenceAsk, Channel: channel})
}

// GatherTimeout bounds GatherPresence: a node that does not answer within
// it (stopped, or cut off but not yet declared gone) is left out.
const GatherTimeout = time.Second

// presenceWaiter collects the answers to one question (presence, or the
// acks of an action).
type presenceWaiter struct {
	want    map[string]bool // nodes that have not answered
	clients []protocol.ClientInfo
	answers []json.RawMessage // KindAnswer payloads
	done    chan struct{}
}

// GatherPresence implements hub.PresenceBroker: it asks every live node and
// waits for each one's answer, at most GatherTimeout.
func (n *NATS) GatherPresence(channel string) []protocol.ClientInfo {
	return n.ask(Control{Kind: KindPresenceAsk, Channel: channel})
}

// BroadcastWait sends a control message to every other node and returns
// once each live one has applied it (or after GatherTimeout, leaving out
// those that did not answer: a stopped node's connections do nothing
// meanwhile, and it is declared gone soon after).
func (n *NATS) BroadcastWait(c Control) { n.ask(c) }

// Ask asks every other live node the question topic with its argument arg
// and returns their answers (their ControlHandler.Query), waiting at most
// GatherTimeout: a node that does not answer in time is left out.
func (n *NATS) Ask(topic string, arg json.RawMessage) []json.RawMessage {
	_, answers := n.askAll(Control{Kind: KindQuery, Channel: topic, Data: arg})
	return answers
}

// ask broadcasts c with a fresh question id and collects the answers of
// every live node.
func (n *NATS) ask(c Control) []protocol.ClientInfo {
	clients, _ := n.askAll(c)
	return clients
}

func (n *NATS) askAll(c Control) ([]protocol.ClientInfo, []json.RawMessage) {
	w := &presenceWaiter{want: map[string]bool{}, done: make(chan struct{})}
	n.mu.Lock()
	for id, p := range n.peers {
		if !p.gone {
			w.want[id] = true
		}
	}
	if len(w.want) == 0 {
		n.mu.Unlock()
		n.Broadcast(c) // a node not yet heard of may still be listening
		return nil, nil
	}
	n.reqs++
	id := strconv.FormatUint(n.reqs, 10)
	if n.waiters == nil {
		n.waiters = map[string]*presenceWaiter{}
	}
	n.waiters[id] = w
	n.mu.Unlock()
	c.ID = id
	n.Broadcast(c)
	t := time.NewTimer(GatherTimeout)
	defer t.Stop()
	select {
	case <-w.done:
	case <-t.C:
	case <-n.stop:
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.waiters, id)
	return w.clients, w.answers
}

// answered gives a presence answer to the question waiting for it.
func (n *NATS) answered(c Control) {
	if c.ID == "" {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	w := n.waiters[c.ID]
	if w == nil || !w.want[c.Origin] {
		return
	}
	delete(w.want, c.Origin)
	w.clients = append(w.clients, c.Clients...)
	if c.Data != nil {
		w.answers = append(w.answers, c.Data)
	}
	if len(w.want) == 0 {
		close(w.done)
	}
}
