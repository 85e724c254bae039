package protocol

import "fmt"

// Subprotocol is the WebSocket subprotocol name of protocol v1.
const Subprotocol = "sori.v1"

// Error is a numbered protocol error sent in a reply. It is also a Go error so
// that handlers can return it directly.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// Error implements error, as "sori error <code>: <message>".
func (e *Error) Error() string { return fmt.Sprintf("sori error %d: %s", e.Code, e.Message) }

// Is reports whether target is a *Error with the same code, so that
// errors.Is(err, protocol.ErrNotFound) holds for any 117 whatever its
// message (WithMessage makes copies; pointer equality would miss them).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && e != nil && t != nil && t.Code == e.Code
}

// WithMessage returns a copy of e with a more specific message.
func (e *Error) WithMessage(msg string) *Error { return &Error{Code: e.Code, Message: msg} }

// Numbered errors. Codes are stable: clients switch on them. Keep
// docs/protocol.md in sync when adding one.
var (
	ErrInternal          = &Error{100, "internal server error"}
	ErrBadRequest        = &Error{101, "bad request"}
	ErrUnknownOp         = &Error{102, "unknown op"}
	ErrNotConnected      = &Error{103, "connect first"}
	ErrPermissionDenied  = &Error{104, "permission denied"}
	ErrAlreadyConnected  = &Error{105, "already connected"}
	ErrAlreadySubscribed = &Error{106, "already subscribed"}
	ErrNotSubscribed     = &Error{107, "not subscribed"}
	ErrTooManySubs       = &Error{108, "too many subscriptions"}
	ErrRateLimited       = &Error{109, "too many commands, slow down"}
	ErrMessageTooLarge   = &Error{110, "message too large"}
	ErrBadChannel        = &Error{111, "invalid channel name"}
	ErrTokenExpired      = &Error{112, "token expired"}
	ErrBadToken          = &Error{113, "invalid token"}
	ErrBadData           = &Error{114, "data must be valid JSON"}
	ErrUnavailable       = &Error{115, "feature not enabled for this channel"}
	ErrUnknownMethod     = &Error{116, "unknown rpc method"}
	ErrNotFound          = &Error{117, "not found"}
	ErrConflict          = &Error{118, "conflict"}
	ErrCallFull          = &Error{119, "the call is full"}
	ErrQuota             = &Error{120, "storage quota exceeded"}
	ErrStorageLow        = &Error{121, "the server is low on storage"}
	ErrStoreDown         = &Error{122, "the chat store is unreachable from this node: try again shortly"}
	ErrNeedsSFU          = &Error{123, "only a call on the SFU can do this"}
)

// Disconnect is a numbered reason for closing a connection. On WebSocket the
// code is the close frame's status code (RFC 6455 §7.4); other transports send
// it in a "disconnect" push. Codes 4000–4499 ask the client to reconnect (and
// resume), codes 4500–4999 ask it not to reconnect without a change (a new token,
// a fixed client).
type Disconnect struct {
	Code      int    `json:"code"`
	Reason    string `json:"reason"`
	Reconnect bool   `json:"reconnect"`
}

// Error implements error, so that a Disconnect can be returned as the reason
// a connection ends.
func (d Disconnect) Error() string { return fmt.Sprintf("disconnect %d: %s", d.Code, d.Reason) }

// Numbered disconnect reasons.
var (
	DisconnectNormal          = Disconnect{1000, "normal closure", false}
	DisconnectShutdown        = Disconnect{1001, "server shutting down, reconnect", true}
	DisconnectInvalidUTF8     = Disconnect{1007, "invalid UTF-8 in text frame", false}
	DisconnectPolicy          = Disconnect{1008, "policy violation", false}
	DisconnectTooBig          = Disconnect{1009, "message too big", false}
	DisconnectInternal        = Disconnect{1011, "internal server error", true}
	DisconnectSlowConsumer    = Disconnect{4001, "slow consumer, resume", true}
	DisconnectNoPong          = Disconnect{4002, "heartbeat timeout", true}
	DisconnectTokenExpired    = Disconnect{4003, "token expired, reconnect with a fresh token", true}
	DisconnectForceReconnect  = Disconnect{4004, "reconnect requested by server", true}
	DisconnectBadRequest      = Disconnect{4500, "bad request", false}
	DisconnectUnauthorized    = Disconnect{4501, "unauthorized", false}
	DisconnectKicked          = Disconnect{4502, "disconnected by server", false}
	DisconnectConnLimit       = Disconnect{4503, "connection limit reached", false}
	DisconnectConnectTimeout  = Disconnect{4504, "no connect command in time", false}
	DisconnectRateLimit       = Disconnect{4505, "command rate limit exceeded repeatedly", false}
	DisconnectUnsupportedData = Disconnect{1003, "binary frames are not supported by sori.v1", false}
)

// WithReason returns a copy of d with a more specific reason.
func (d Disconnect) WithReason(reason string) Disconnect { d.Reason = reason; return d }
