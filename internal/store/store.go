package store

import (
	"context"
	"time"
)

// Store is Sori's durable chat storage. Every method is safe for concurrent
// use, takes a context that bounds its wait, and either makes its whole change
// or none of it. Errors wrap ErrNotFound, ErrConflict, ErrInvalid or ErrClosed
// where those apply. Validating names, bodies and permissions is the caller's
// job; the store only keeps its own invariants (uniqueness, references,
// gap-free sequences).
type Store interface {
	// CreateUser inserts u and returns it with ID and CreatedAt set;
	// ErrConflict if the username is taken (case-insensitively).
	CreateUser(ctx context.Context, u User) (User, error)
	// GetUser returns the user with id.
	GetUser(ctx context.Context, id int64) (User, error)
	// GetUserByName returns the user whose name folds to the same key as name.
	GetUserByName(ctx context.Context, name string) (User, error)
	// ListUsers returns every user in id order.
	ListUsers(ctx context.Context) ([]User, error)
	// SetPasswordHash replaces a user's password hash (a rehash at login;
	// a password change is RevokeCredentials).
	SetPasswordHash(ctx context.Context, userID int64, hash string) error
	// RevokeCredentials ends every credential userID holds, in one
	// transaction: it increments CredentialsGen, sets CredentialsChangedAt to
	// now, deletes all the user's sessions and API tokens and, when hash is
	// not empty, replaces the password hash. It returns the updated user.
	RevokeCredentials(ctx context.Context, userID int64, hash string) (User, error)
	// CredentialsChangedSince returns the users whose CredentialsChangedAt
	// is after since, oldest change first: how a running server learns of a
	// revocation made by another process.
	CredentialsChangedSince(ctx context.Context, since time.Time) ([]User, error)

	// CreateSession stores a session or API token under TokenID(token) and
	// returns it with ID (and CreatedAt, when zero) set; ErrNotFound if the
	// user does not exist, ErrConflict if the token is already stored.
	CreateSession(ctx context.Context, token string, s Session) (Session, error)
	// CreateSessionCapped is CreateSession for a kind of session a user
	// may hold at most max of (API tokens): it counts the user's sessions
	// of s.Kind unexpired at s.CreatedAt (now, when zero) and stores s only
	// if fewer than max, else ErrLimit and nothing stored. Counting and
	// storing are one step for every process sharing the store, so
	// concurrent calls on several cluster nodes never pass max together.
	CreateSessionCapped(ctx context.Context, token string, s Session, max int) (Session, error)
	// GetSession returns the session of token; ErrNotFound if it does not
	// exist or has expired.
	GetSession(ctx context.Context, token string) (Session, error)
	// ListSessions returns a user's sessions and tokens, newest first.
	ListSessions(ctx context.Context, userID int64) ([]Session, error)
	// DeleteSession removes the session with the given ID (TokenID of its
	// token), as at logout or token revocation.
	DeleteSession(ctx context.Context, id string) error
	// DeleteUserSessions removes all of a user's sessions and tokens, as
	// after a password reset.
	DeleteUserSessions(ctx context.Context, userID int64) error
	// DeleteExpiredSessions removes sessions that expired at or before now
	// and returns how many.
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error)

	// CreateRoom creates a public or private room and makes r.CreatedBy its
	// owner in the same transaction. It returns the room with ID, Epoch and
	// CreatedAt set; ErrConflict if the name is taken, ErrInvalid for a direct
	// room (use GetOrCreateDirectRoom).
	CreateRoom(ctx context.Context, r Room) (Room, error)
	// GetOrCreateDirectRoom returns the direct room of users a and b, in
	// either order, creating it (with both as members) if needed; created
	// reports whether it did.
	GetOrCreateDirectRoom(ctx context.Context, a, b int64) (r Room, created bool, err error)
	// GetRoom returns the room with id.
	GetRoom(ctx context.Context, id int64) (Room, error)
	// GetRoomByName returns the room whose name folds to the same key as name.
	GetRoomByName(ctx context.Context, name string) (Room, error)
	// ListPublicRooms returns the public rooms in name order.
	ListPublicRooms(ctx context.Context) ([]Room, error)
	// ListUserRooms returns the rooms userID is a member of, with unread
	// counts, most recently active first.
	ListUserRooms(ctx context.Context, userID int64) ([]RoomSummary, error)
	// SetTopic replaces a room's topic.
	SetTopic(ctx context.Context, roomID int64, topic string) error

	// AddMember adds userID to a room with role; ErrConflict if already a
	// member, ErrNotFound if the room or user does not exist.
	AddMember(ctx context.Context, roomID, userID int64, role Role) (Member, error)
	// RemoveMember removes userID from a room; ErrConflict if userID is the
	// room's only owner and others remain (a room with members always has
	// an owner, even when two owners leave at once).
	RemoveMember(ctx context.Context, roomID, userID int64) error
	// GetMember returns userID's membership of a room.
	GetMember(ctx context.Context, roomID, userID int64) (Member, error)
	// ListMembers returns a room's members in join order.
	ListMembers(ctx context.Context, roomID int64) ([]Member, error)
	// SetRole changes a member's role; ErrConflict if it would demote the
	// room's only owner (so two owners demoting each other at once leave
	// one).
	SetRole(ctx context.Context, roomID, userID int64, role Role) error
	// SetLastRead moves a member's read receipt forward to seq (never back,
	// never past the room's last seq) and returns the resulting value.
	SetLastRead(ctx context.Context, roomID, userID int64, seq uint64) (uint64, error)

	// AppendEvent appends ev to the room's log, applies it to the messages
	// it concerns, and returns it with RoomID, Seq and CreatedAt set. It
	// returns only once the event is committed; concurrent calls are
	// committed together (group commit) and get seqs in commit order. If ctx
	// ends first it returns ctx's error, and the event may or may not have
	// been committed. Edits, deletes, reactions and pins of a message that
	// does not exist are ErrNotFound; of a deleted message, ErrConflict; a
	// reaction given twice or a pin of a pinned message is ErrConflict, an
	// unpin of a message not pinned ErrNotFound; a thread reply whose root is
	// missing is ErrNotFound, deleted ErrConflict. A rejected event takes no
	// seq. A message whose ClientID its author already used in the room is
	// not appended: the earlier message event is returned with Duplicate set
	// (also when both arrive at once, on any node).
	AppendEvent(ctx context.Context, roomID int64, ev Event) (Event, error)
	// EventsAfter returns up to limit events with seq > after, oldest first:
	// what a resuming client missed.
	EventsAfter(ctx context.Context, roomID int64, after uint64, limit int) ([]Event, error)
	// LatestEvents returns the newest limit events, oldest first.
	LatestEvents(ctx context.Context, roomID int64, limit int) ([]Event, error)
	// RoomPosition returns the room's epoch and latest seq.
	RoomPosition(ctx context.Context, roomID int64) (Position, error)

	// GetMessage returns the message whose message event has seq.
	GetMessage(ctx context.Context, roomID int64, seq uint64) (Message, error)
	// MessagesBefore returns up to limit messages with seq < before, newest
	// first; before == 0 starts from the newest message.
	MessagesBefore(ctx context.Context, roomID int64, before uint64, limit int) ([]Message, error)
	// MessagesAfter returns up to limit messages with seq > after, oldest
	// first.
	MessagesAfter(ctx context.Context, roomID int64, after uint64, limit int) ([]Message, error)
	// ThreadMessages returns up to limit replies in the thread of root with
	// seq > after, oldest first.
	ThreadMessages(ctx context.Context, roomID int64, root, after uint64, limit int) ([]Message, error)
	// ListPins returns a room's pinned messages, most recently pinned
	// first (at most MaxLimit).
	ListPins(ctx context.Context, roomID int64) ([]Pin, error)
	// SetNotify sets a member's notification level; ErrNotFound if userID
	// is not a member, ErrInvalid for an unknown level.
	SetNotify(ctx context.Context, roomID, userID int64, level NotifyLevel) error

	// SearchMessages returns up to limit live messages in roomIDs that match
	// every word of query, newest first. Query is plain user text: it has no
	// operator syntax; every word matches as a prefix ("welc" finds
	// "welcome"), and a trailing '*' is accepted and ignored.
	SearchMessages(ctx context.Context, roomIDs []int64, query string, limit int) ([]Message, error)

	// CreateFile stores file metadata and returns it with ID (when empty)
	// and CreatedAt set; ErrNotFound if the room or uploader does not exist.
	CreateFile(ctx context.Context, f File) (File, error)
	// GetFile returns the file with id.
	GetFile(ctx context.Context, id string) (File, error)
	// UserFileBytes returns the total size of the files userID uploaded:
	// what counts against the user's storage quota.
	UserFileBytes(ctx context.Context, userID int64) (int64, error)
	// ListFiles returns up to limit of a room's files, newest first. When
	// before is not empty it is the id of one of the room's files (else
	// ErrNotFound), and the page starts after it in that order.
	ListFiles(ctx context.Context, roomID int64, before string, limit int) ([]File, error)

	// AddPushSubscription stores a Web Push subscription of s.UserID and
	// returns it with ID (random) and CreatedAt set. A subscription with the
	// same endpoint is replaced (a browser keeps its endpoint when it
	// subscribes again, possibly for another user); then, if the user holds
	// more than max, their oldest ones are deleted. ErrNotFound if the user
	// does not exist.
	AddPushSubscription(ctx context.Context, s PushSubscription, max int) (PushSubscription, error)
	// ListPushSubscriptions returns a user's subscriptions, oldest first.
	ListPushSubscriptions(ctx context.Context, userID int64) ([]PushSubscription, error)
	// DeletePushSubscription removes subscription id of userID; ErrNotFound
	// if userID has no such subscription.
	DeletePushSubscription(ctx context.Context, userID int64, id string) error

	// GetUsers returns the users with the given ids that exist, in id
	// order (for showing many members or authors with one read).
	GetUsers(ctx context.Context, ids []int64) ([]User, error)
	// SetDisplayName replaces a user's display name and returns the user.
	SetDisplayName(ctx context.Context, userID int64, name string) (User, error)
	// SetAvatar stores a user's avatar (replacing any), or removes it when
	// a.Data is empty, sets the user's AvatarAt (zero after a removal) and
	// returns the user.
	SetAvatar(ctx context.Context, userID int64, a Avatar) (User, error)
	// GetAvatar returns a user's avatar; ErrNotFound if the user has none.
	GetAvatar(ctx context.Context, userID int64) (Avatar, error)
	// SetDisabled disables or enables a user and returns the user.
	// Disabling also does what RevokeCredentials does, in the same
	// transaction, so no credential of the user outlives it.
	SetDisabled(ctx context.Context, userID int64, disabled bool) (User, error)

	// CreateInvite stores inv (ID and CreatedBy set by the caller; Used
	// starts at 0) and returns it with CreatedAt set; ErrConflict if the
	// id is taken. With max > 0 it first deletes the spent and expired
	// invites (at inv.CreatedAt) and stores inv only if fewer than max
	// usable ones remain, else ErrLimit and nothing stored; counting and
	// storing are one step for every process sharing the store, so
	// concurrent calls on several cluster nodes never pass max together.
	CreateInvite(ctx context.Context, inv Invite, max int) (Invite, error)
	// ListInvites returns every stored invite, newest first.
	ListInvites(ctx context.Context) ([]Invite, error)
	// DeleteInvite removes an invite; ErrNotFound if there is none.
	DeleteInvite(ctx context.Context, id string) error
	// CreateUserWithInvite spends one use of invite inviteID and creates u,
	// in one transaction: the invite must exist, be unexpired at now and
	// have a use left (else ErrNotFound, nothing created); a taken username
	// is ErrConflict and spends nothing. Concurrent sign-ups never spend
	// more uses than the invite has.
	CreateUserWithInvite(ctx context.Context, u User, inviteID string, now time.Time) (User, error)

	// GetSetting returns a server setting stored by SetSetting; ErrNotFound
	// when it was never set (or was cleared).
	GetSetting(ctx context.Context, key string) (string, error)
	// SetSetting stores a server setting, shared by every node on the same
	// store; an empty value clears it.
	SetSetting(ctx context.Context, key, value string) error
	// ListRooms returns up to limit rooms of every kind with id > after, in
	// id order, with their member counts (server administration).
	ListRooms(ctx context.Context, after int64, limit int) ([]RoomInfo, error)

	// Close waits for pending appends to commit, stops the writer and
	// releases the database. Later calls fail with ErrClosed. It is safe to
	// call more than once.
	Close() error
}
