package session

import "github.com/sori-dev/sori/internal/protocol"

// Conn is the transport-facing half of a Session: everything a transport
// (WebSocket, SSE + POST, long polling) calls, and nothing else. *Session
// implements it; transports hold a Conn, never a *Session, so that what they
// may do to a session is written here once.
//
// Concurrency contract, the same for every transport:
//   - Handle: one reader at a time (the transport serializes its inbound
//     messages); it returns the Disconnect to close with and true
//     when the connection must close.
//   - Drain, Idle, Pending, Wrote: one writer at a time. Drain's slice is
//     valid until the next Drain; Idle tells the session the queue was found
//     empty so its buffers can go; Pending reports frames queued since.
//   - SendControl: any goroutine (a WebSocket pong from the reader).
//   - Closed: once the transport is done with the connection (its reader
//     stopped); later calls do nothing. After Closed the queue drops
//     everything.
type Conn interface {
	Handle(msg []byte) (protocol.Disconnect, bool)
	Drain() []Frame
	Idle()
	Pending() bool
	Wrote(frames, bytes int, oldestPublishedAt int64)
	SendControl(op byte, payload []byte)
	Closed(d protocol.Disconnect)
}

var _ Conn = (*Session)(nil)
