// Package cluster connects Sori nodes. Its first part is the bus that tells
// the other nodes of every publication committed to a durable channel's log
// (the chat store, shared by all nodes in cluster mode), over NATS core.
//
// The bus follows the rule of docs/architecture.md's cluster section: the
// log assigns the order; the bus is only the news. Delivery is at most once
// (NATS core drops messages on a slow consumer or a reconnect), in FIFO
// order per publishing node only, so a receiver orders by offset, drops
// what it already has and repairs holes by reading the log. The bus never
// invents or alters a publication.
//
// Its second part, JSLog, is the log of record of the channels that keep
// their history in memory on a single node: a hub.Backend on JetStream.
//
// It must never import session, transport, server or chat: the bus knows
// the hub only through the small Handler it delivers to, and JSLog only
// implements the hub's Backend.
package cluster

import (
	"github.com/sori-dev/sori/internal/protocol"
)

// Handler receives the publications other nodes committed. It must not
// block: the bus calls it from its delivery goroutine, and a slow handler
// makes the bus drop messages.
type Handler func(channel, epoch string, pub protocol.Publication)

// Bus carries committed publications between nodes.
type Bus interface {
	// Publish tells the other nodes (never this one) that pub was committed
	// to channel's log under epoch. It does not block on the network and
	// returns an error only when the bus is closed or the message cannot be
	// encoded; a lost message is repaired by the receivers, not reported.
	Publish(channel, epoch string, pub protocol.Publication) error
	// Close stops delivering to the handler and releases the connection.
	Close() error
}

// message is a publication on the wire (JSON). Origin is the publishing
// node, for logs and for dropping one's own echo.
type message struct {
	Channel string               `json:"c"`
	Epoch   string               `json:"e"`
	Origin  string               `json:"o"`
	Pub     protocol.Publication `json:"p"`
}
