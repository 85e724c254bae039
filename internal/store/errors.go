package store

import "errors"

// Sentinel errors. Implementations wrap them (test with errors.Is) and use
// them consistently: a missing row is ErrNotFound, a unique violation (a taken
// username or room name, a member added twice, a reaction given twice, an edit
// of a deleted message) is ErrConflict.
var (
	// ErrNotFound means the user, session, room, member, message or file does
	// not exist, or a row it refers to does not.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict means the change would break a uniqueness rule or the
	// current state forbids it.
	ErrConflict = errors.New("store: conflict")
	// ErrInvalid means an argument the store cannot act on, such as an
	// unknown event kind or role.
	ErrInvalid = errors.New("store: invalid argument")
	// ErrLimit means the change would pass a bound on how many rows of a
	// kind may exist (such as the usable invites): nothing was changed.
	ErrLimit = errors.New("store: limit reached")
	// ErrUnavailable means the database could not be reached, or the
	// connection broke during the call (a restart, a failover, a network
	// cut): retrying later may succeed. A write that failed so may have
	// committed all the same.
	ErrUnavailable = errors.New("store: database unreachable")
	// ErrClosed means the Store was closed.
	ErrClosed = errors.New("store: closed")
)
