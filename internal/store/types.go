package store

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// Times are kept with microsecond precision (what PostgreSQL keeps) and are
// returned in UTC.

// User is an account. PasswordHash is opaque to the store: hashing and
// verification belong to the auth layer.
type User struct {
	ID           int64
	Username     string // unique, compared case-insensitively (see FoldName)
	PasswordHash string
	IsAdmin      bool
	CreatedAt    time.Time
	// CredentialsGen counts the user's credential revocations (password
	// change, reset, "log out everywhere"); CredentialsChangedAt is when the
	// last one happened (zero = never). Connection tokens carry the
	// generation they were minted under, or are judged by their issue time.
	CredentialsGen       int64
	CredentialsChangedAt time.Time
	// DisplayName is the name shown for the user ("" = the username).
	// AvatarAt is when the user's avatar was last set, zero when the user
	// has none: it versions the avatar's URL, so caches never show a
	// replaced one.
	DisplayName string
	AvatarAt    time.Time
	// Disabled users cannot log in and hold no credential: disabling also
	// revokes every one (see Store.SetDisabled).
	Disabled bool
}

// Avatar is a user's profile picture. ContentType is one of the image
// types the accounts layer accepts, sniffed from Data.
type Avatar struct {
	UserID      int64
	ContentType string
	Data        []byte
	UpdatedAt   time.Time
}

// Invite is a sign-up invitation. Like a session, the store keeps only the
// TokenID of its code. Uses is how many sign-ups it allows, Used how many
// it was spent on; it is valid while Used < Uses and before ExpiresAt.
type Invite struct {
	ID        string // TokenID of the code
	CreatedBy int64
	CreatedAt time.Time
	ExpiresAt time.Time
	Uses      int
	Used      int
}

// RoomInfo is a room with its member count, as a server administrator
// lists rooms.
type RoomInfo struct {
	Room
	Members int64
}

// SessionKind tells a browser session from an API bearer token.
type SessionKind string

// Session kinds.
const (
	SessionWeb SessionKind = "web" // cookie session of the web app; has a CSRF token
	SessionAPI SessionKind = "api" // bearer token for the REST API and the SDK
)

// Session is a login session or an API token. The store never keeps the
// token itself, only its SHA-256: ID is that digest in hex, safe to show and
// to use for revocation.
type Session struct {
	ID        string // TokenID of the token; set by the store
	Kind      SessionKind
	UserID    int64
	Label     string // free text for API tokens ("ci deploy"); may be empty
	CSRFToken string
	CreatedAt time.Time
	ExpiresAt time.Time // zero = never expires
}

// TokenID returns the identifier under which a session token is stored: the
// hex SHA-256 of the token. Every implementation must use it, so that a token
// minted by one node works on another.
func TokenID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// FoldName is the case-insensitive key of a username or room name; two names
// with the same key cannot both exist.
func FoldName(name string) string { return strings.ToLower(name) }

// RoomKind is the visibility of a room.
type RoomKind string

// Room kinds.
const (
	RoomPublic  RoomKind = "public"  // anyone may find and join it
	RoomPrivate RoomKind = "private" // members only, joined by invitation
	RoomDirect  RoomKind = "direct"  // exactly two users; one per pair
)

// Valid reports whether k is a known room kind.
func (k RoomKind) Valid() bool { return k == RoomPublic || k == RoomPrivate || k == RoomDirect }

// Role is a member's rank in a room.
type Role string

// Roles, highest first.
const (
	RoleOwner  Role = "owner"
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleOwner || r == RoleAdmin || r == RoleMember }

// Room is a chat room. Its Epoch is random, fixed at creation: a client that
// resumes with an offset from another epoch (say, after the database was
// reset) must reload instead of trusting the offset.
type Room struct {
	ID        int64
	Name      string // slug, unique case-insensitively; generated for direct rooms
	Title     string
	Topic     string
	Kind      RoomKind
	CreatedBy int64
	CreatedAt time.Time
	Epoch     string
	LastSeq   uint64 // seq of the newest event; 0 when the log is empty
}

// Member is a user's membership of a room.
type Member struct {
	RoomID      int64
	UserID      int64
	Role        Role
	JoinedAt    time.Time
	LastReadSeq uint64 // read receipt: the newest seq the user has seen
	Notify      NotifyLevel
}

// NotifyLevel is what a member wants to be notified of in a room.
type NotifyLevel string

// Notification levels.
const (
	NotifyAll      NotifyLevel = "all"      // every message (the default)
	NotifyMentions NotifyLevel = "mentions" // mentions and, in direct rooms, every message
	NotifyNone     NotifyLevel = "none"     // nothing: the room is muted
)

// Valid reports whether l is a known level.
func (l NotifyLevel) Valid() bool { return l == NotifyAll || l == NotifyMentions || l == NotifyNone }

// RoomSummary is a room as seen by one of its members.
type RoomSummary struct {
	Room
	Role        Role
	LastReadSeq uint64
	// Unread counts the room's live messages after LastReadSeq that were not
	// written by this member.
	Unread int64
	// Mentions counts the unread live messages that mention this member
	// (by name, or @room); in a direct room every unread message counts.
	Mentions int64
	Notify   NotifyLevel
}

// Position is the head of a room's event log: the channel offset a client
// resumes from.
type Position struct {
	Epoch string
	Seq   uint64
}

// EventKind is what an event in a room's log does.
type EventKind string

// Event kinds.
const (
	EventMessage        EventKind = "message"         // a new message; its seq is the message's id
	EventEdit           EventKind = "edit"            // replaces Target's body with Body
	EventDelete         EventKind = "delete"          // tombstones Target
	EventReactionAdd    EventKind = "reaction_add"    // UserID reacts to Target with Emoji
	EventReactionRemove EventKind = "reaction_remove" // UserID withdraws Emoji from Target
	EventPin            EventKind = "pin"             // UserID pins Target to the room
	EventUnpin          EventKind = "unpin"           // UserID unpins Target
)

// Valid reports whether k is a known event kind.
func (k EventKind) Valid() bool {
	switch k {
	case EventMessage, EventEdit, EventDelete, EventReactionAdd, EventReactionRemove, EventPin, EventUnpin:
		return true
	}
	return false
}

// Event is one entry of a room's append-only log. Seq is per room, starts at
// 1 and has no gaps. Deleting a message scrubs the Body of that message's
// earlier message and edit events, so a deleted text cannot be replayed.
type Event struct {
	RoomID    int64
	Seq       uint64 // assigned by the store
	Kind      EventKind
	UserID    int64     // author or actor
	Body      string    // message, edit
	ReplyTo   uint64    // message: seq of the message replied to, 0 = none
	Target    uint64    // edit, delete, reaction_*, pin, unpin: seq of the message acted on
	Emoji     string    // reaction_*
	CreatedAt time.Time // set by the store when zero

	// Message only. ClientID is the author's idempotency key: a message
	// whose (room, author, ClientID) is already stored is not appended
	// again; AppendEvent returns the stored message event with Duplicate
	// set instead. Thread is the seq of the root message whose thread this
	// message replies in (0 = the main timeline). Mentions are the ids of
	// the members the text mentions, MentionRoom an @room from a room admin.
	ClientID    string
	Thread      uint64
	Mentions    []int64
	MentionRoom bool
	// Duplicate is set by AppendEvent on the earlier event it returns for a
	// repeated ClientID; nothing was written.
	Duplicate bool
}

// Reaction is one emoji on a message and who gave it, in user id order.
type Reaction struct {
	Emoji   string
	UserIDs []int64
}

// Message is the current state of a message, materialized from the log in
// the same transaction as each event.
type Message struct {
	RoomID    int64
	Seq       uint64 // seq of the message event: the message's id within its room
	AuthorID  int64
	Body      string // empty when Deleted
	ReplyTo   uint64
	CreatedAt time.Time
	EditedAt  time.Time // zero if never edited
	Deleted   bool
	Reactions []Reaction // ordered by emoji; nil when none

	ClientID    string  // see Event.ClientID
	Thread      uint64  // root seq when this is a thread reply, else 0
	Mentions    []int64 // user ids, as posted (an edit does not change them)
	MentionRoom bool
	// A thread root's reply count (deleted replies included: their
	// tombstones stay in the thread) and its newest reply's seq.
	ThreadReplies int64
	ThreadLastSeq uint64
}

// Pin is a message pinned to its room.
type Pin struct {
	Message
	PinnedBy int64
	PinnedAt time.Time
}

// PushSubscription is a browser's Web Push subscription (RFC 8030): where to
// POST, and the keys to encrypt to (RFC 8291), base64url as the browser's
// PushSubscription.toJSON() gives them.
type PushSubscription struct {
	ID        string
	UserID    int64
	Endpoint  string
	P256DH    string
	Auth      string
	CreatedAt time.Time
}

// MaxClientID bounds Event.ClientID, in bytes.
const MaxClientID = 64

// File is the metadata of an uploaded file. The bytes are handled by the
// caller: on disk under Path, relative to the data dir, or, when Path is
// "blob:<id>", in the PostgreSQL store's blob table (cluster mode).
type File struct {
	ID          string // random; generated by the store when empty
	RoomID      int64
	UploaderID  int64
	Name        string // original file name
	ContentType string
	Size        int64
	SHA256      string // hex
	Path        string
	CreatedAt   time.Time
}

// Limits of list and read methods: a limit <= 0 means DefaultLimit, and no
// call returns more than MaxLimit rows.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// ClampLimit applies DefaultLimit and MaxLimit to a caller's limit.
func ClampLimit(limit int) int {
	switch {
	case limit <= 0:
		return DefaultLimit
	case limit > MaxLimit:
		return MaxLimit
	}
	return limit
}
