// Package ws is Sori's WebSocket transport (RFC 6455, with permessage-deflate
// from RFC 7692). gobwas/ws performs the handshake; this package owns the
// frame loop so that a connection holds no buffers while idle and its writer
// coalesces every queued frame into one write. It must never import hub, chat
// or server.
package ws
