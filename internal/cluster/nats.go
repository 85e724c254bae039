package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

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
	nc     *nats.Conn
	sub    *nats.Subscription
	nodeID string
	log    *slog.Logger
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
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("cluster: NATS disconnected", "err", err) }),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("cluster: NATS reconnected", "url", c.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { log.Warn("cluster: NATS error", "err", err) }),
	)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to NATS: %w", err)
	}
	n.nc = nc
	n.sub, err = nc.Subscribe(Subject, func(m *nats.Msg) {
		var msg message
		if err := json.Unmarshal(m.Data, &msg); err != nil || msg.Channel == "" {
			log.Warn("cluster: dropped a malformed bus message", "err", err)
			return
		}
		if msg.Origin == nodeID {
			return // another connection with our id: never deliver twice
		}
		h(msg.Channel, msg.Epoch, msg.Pub)
	})
	if err == nil {
		// The local NATS server has the interest once Flush returns.
		err = nc.Flush()
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("cluster: subscribe to %s: %w", Subject, err)
	}
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

// Close implements Bus: it drains nothing (publications not yet sent are
// repaired by the receivers) and closes the connection.
func (n *NATS) Close() error {
	n.nc.Close()
	return nil
}
