// Package protocol defines Sori's wire protocol v1 (subprotocol "sori.v1"): the
// commands a client sends, the replies and pushes the server sends, and the
// numbered error and close codes. docs/protocol.md is its specification.
//
// It owns encoding and decoding only; it must never import hub, session,
// transport or anything that does I/O.
package protocol
