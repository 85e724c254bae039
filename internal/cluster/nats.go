package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sori-dev/sori/internal/protocol"
)

// Subject is the NATS subject every node publishes committed publications
// on and subscribes to. One subject for all channels: every node hears
// every durable publication and keeps those of channels it serves, so no
// per-channel interest has to reach the other NATS servers before a
// subscriber is safe (NATS gives no signal for that, nats-server#1142).
const Subject = "sori.pub"

// NATS is the Bus over NATS core. It is safe for concurrent use; the
// handler runs on the subscription's single delivery goroutine.
type NATS struct {
	nc      *nats.Conn
	subs    []*nats.Subscription
	nodeID  string
	log     *slog.Logger
	inbox   chan *nats.Msg
	stop    chan struct{}
	stopped chan struct{}
	closing sync.Once

	ctl atomic.Pointer[ControlHandler] // see OnControl

	mu      sync.Mutex
	peers   map[string]*peer           // by node id: the nodes heard from (heartbeats.go)
	waiters map[string]*presenceWaiter // by request id (control.go)
	reqs    uint64
}

var _ Bus = (*NATS)(nil)

// Connect connects to the NATS servers at urls as node nodeID and delivers
// other nodes' publications to h. The client reconnects forever, so a NATS
// restart is survived (messages in between are lost, and repaired from the
// log by the receivers).
func Connect(urls []string, nodeID string, h Handler, log *slog.Logger) (*NATS, error) {
	if len(urls) == 0 {
		return nil, errors.New("cluster: no NATS URL")
	}
	if nodeID == "" {
		return nil, errors.New("cluster: empty node id")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &NATS{nodeID: nodeID, log: log}
	nc, err := nats.Connect(strings.Join(urls, ","),
		nats.Name("sori "+nodeID),
		nats.NoEcho(), // this node delivers its own publications itself
		nats.MaxReconnects(-1),
		// Every 250 ms (nats.go's default is 2 s): while this node is
		// cut off, the others go on appending to JetStream histories,
		// which keep only the last Size publications of a channel; a
		// node that comes back after they moved past what it delivered
		// must send its subscribers away to resume (hub.Resyncer). Nodes
		// retrying on their own 2 s schedules came back up to 2 s apart
		// after a NATS restart, long enough for busy writers on the first
		// to push an app: channel 100 publications past the last.
		nats.ReconnectWait(250*time.Millisecond),
		// And without nats.go's random 0–100 ms on top: jitter spreads
		// thousands of clients of one server; a cluster has a handful of
		// nodes, which should come back together. With it, one node came
		// back 140 ms after the other two, when the writers on those had
		// already pushed an app: channel's 100 retained publications past
		// what that node had delivered (TestRestartNATSUnderLoadJetStream,
		// 2 runs of 8). All nodes lost the connection at the same moment,
		// so without jitter they retry in step.
		nats.ReconnectJitter(0, 0),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("cluster: NATS disconnected", "err", err)
			if ch := n.ctl.Load(); ch != nil && ch.Disconnected != nil {
				ch.Disconnected()
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("cluster: NATS reconnected", "url", c.ConnectedUrlRedacted())
			if ch := n.ctl.Load(); ch != nil && ch.Reconnected != nil {
				ch.Reconnected()
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { log.Warn("cluster: NATS error", "err", err) }),
	)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to NATS: %w", err)
	}
	n.nc = nc
	// One channel for the publications, the cluster-wide control messages
	// and the answers addressed to this node, drained by one goroutine: a
	// node's messages are then handled in the order it sent them, whatever
	// their subject (a presence answer before that node's later leave).
	n.inbox = make(chan *nats.Msg, inboxSize)
	n.stop, n.stopped = make(chan struct{}), make(chan struct{})
	n.peers = map[string]*peer{}
	for _, subj := range []string{Subject, ControlSubject, ToSubject(nodeID)} {
		var sub *nats.Subscription
		if sub, err = nc.ChanSubscribe(subj, n.inbox); err != nil {
			break
		}
		n.subs = append(n.subs, sub)
	}
	if err == nil {
		// The local NATS server has the interest once Flush returns.
		err = nc.Flush()
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("cluster: subscribe to %s: %w", Subject, err)
	}
	go n.dispatch(h)
	return n, nil
}

// Publish implements Bus. nats.go buffers the message and writes it from
// its own goroutine, so this never waits for the network.
func (n *NATS) Publish(channel, epoch string, pub protocol.Publication) error {
	b, err := json.Marshal(message{Channel: channel, Epoch: epoch, Origin: n.nodeID, Pub: pub})
	if err != nil {
		return fmt.Errorf("cluster: encode publication of %s: %w", channel, err)
	}
	if err := n.nc.Publish(Subject, b); err != nil {
		return fmt.Errorf("cluster: publish %s %d: %w", channel, pub.Offset, err)
	}
	return nil
}

// Conn is the NATS connection, for the other parts of the cluster (the
// JetStream history log) that share it.
func (n *NATS) Conn() *nats.Conn { return n.nc }

// Replicas is how many copies a stream should keep: one per NATS server
// this node knows of, at most three (R3 survives the loss of one).
func (n *NATS) Replicas() int { return min(3, max(1, len(n.nc.Servers()))) }

// Connected reports whether the NATS connection is up (for readiness).
func (n *NATS) Connected() bool { return n.nc.IsConnected() }

// Close implements Bus: it tells the other nodes that this node leaves (so
// they drop its clients' presence at once instead of after the heartbeat
// timeout), drains nothing else (publications not yet sent are repaired by
// the receivers) and closes the connection.
func (n *NATS) Close() error {
	n.closing.Do(func() {
		n.send(ControlSubject, Control{Kind: KindBye})
		_ = n.nc.FlushTimeout(time.Second)
		close(n.stop)
		n.nc.Close()
		<-n.stopped
	})
	return nil
}
