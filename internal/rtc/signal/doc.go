// Package signal is Sori's call signaling: who is in a room's call, and the
// relay of WebRTC offers, answers and ICE candidates between its participants
// over their existing Sori connections (see docs/calls.md, "Signaling").
//
// It owns call rooms, participants, perfect-negotiation roles and the mesh
// limit. It never touches media, and must never import the hub, transports,
// HTTP server or store: connections come in through Conn, room membership
// through Membership.
package signal
