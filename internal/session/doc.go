// Package session runs the protocol for one client connection, whatever its
// transport: it decodes commands, checks auth and limits, talks to the hub,
// and queues outbound frames in a bounded queue that the transport drains.
// Node holds all sessions of a server. It must never import transport or
// server: transports plug in through the Transport interface.
package session
