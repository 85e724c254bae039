// Package turn is Sori's embedded STUN/TURN server (RFC 8489, RFC 8656) built on pion/turn.
//
// It owns the listeners (UDP, TCP, optional TLS), the time-limited credential scheme that the
// HTTP layer hands to browsers as an RTCIceServer list, the peer-address policy that keeps the
// relay from reaching the server's own network, and the per-user allocation quota.
// It must never import the hub, transports, HTTP server or store: callers pass a logger,
// a Metrics sink and, in tests, already-open sockets.
package turn
