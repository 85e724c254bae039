-- Sori chat store, version 1. Times are unix microseconds (UTC); 0 means
-- "never" or "none". Every table is STRICT so a wrongly typed bind fails
-- instead of being stored.

CREATE TABLE users (
	id            INTEGER PRIMARY KEY,
	username      TEXT    NOT NULL,
	username_key  TEXT    NOT NULL UNIQUE, -- store.FoldName(username)
	password_hash TEXT    NOT NULL,
	is_admin      INTEGER NOT NULL DEFAULT 0,
	created_at    INTEGER NOT NULL
) STRICT;

-- Browser sessions and API tokens. id is the hex SHA-256 of the token; the
-- token itself is never stored.
CREATE TABLE sessions (
	id         TEXT    PRIMARY KEY,
	kind       TEXT    NOT NULL CHECK (kind IN ('web', 'api')),
	user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	label      TEXT    NOT NULL DEFAULT '',
	csrf_token TEXT    NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at) WHERE expires_at > 0;

-- A room's latest seq is not stored here: it is max(seq) of its events, one
-- index seek away, and keeping a copy would cost the writer an UPDATE per
-- room per batch.
-- name_key is NULL for direct rooms, which are found by direct_key
-- ('<low user id>:<high user id>') instead, so no group room name can ever
-- collide with a direct room.
CREATE TABLE rooms (
	id         INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL,
	name_key   TEXT    UNIQUE,
	direct_key TEXT    UNIQUE,
	title      TEXT    NOT NULL DEFAULT '',
	topic      TEXT    NOT NULL DEFAULT '',
	kind       TEXT    NOT NULL CHECK (kind IN ('public', 'private', 'direct')),
	created_by INTEGER NOT NULL REFERENCES users (id),
	created_at INTEGER NOT NULL,
	epoch      TEXT    NOT NULL,
	CHECK ((kind = 'direct') = (direct_key IS NOT NULL AND name_key IS NULL))
) STRICT;

CREATE TABLE members (
	room_id       INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
	user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	role          TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
	joined_at     INTEGER NOT NULL,
	last_read_seq INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (room_id, user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX members_user ON members (user_id, room_id);

-- The append-only log. seq is per room, from 1, without gaps; it is the
-- real-time channel offset.
CREATE TABLE events (
	room_id    INTEGER NOT NULL REFERENCES rooms (id),
	seq        INTEGER NOT NULL,
	kind       TEXT    NOT NULL CHECK (kind IN ('message', 'edit', 'delete', 'reaction_add', 'reaction_remove')),
	user_id    INTEGER NOT NULL REFERENCES users (id),
	body       TEXT    NOT NULL DEFAULT '',
	reply_to   INTEGER NOT NULL DEFAULT 0,
	target     INTEGER NOT NULL DEFAULT 0,
	emoji      TEXT    NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	PRIMARY KEY (room_id, seq)
) STRICT, WITHOUT ROWID;
-- Finds a message's edit events, whose bodies a delete scrubs.
CREATE INDEX events_target ON events (room_id, target) WHERE kind = 'edit';

-- The current state of each message, kept in step with the log. id is the
-- rowid the full-text index points at.
CREATE TABLE messages (
	id         INTEGER PRIMARY KEY,
	room_id    INTEGER NOT NULL REFERENCES rooms (id),
	seq        INTEGER NOT NULL,
	author_id  INTEGER NOT NULL REFERENCES users (id),
	body       TEXT    NOT NULL,
	reply_to   INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL,
	edited_at  INTEGER NOT NULL DEFAULT 0,
	deleted    INTEGER NOT NULL DEFAULT 0,
	UNIQUE (room_id, seq)
) STRICT;

CREATE TABLE reactions (
	room_id    INTEGER NOT NULL,
	seq        INTEGER NOT NULL,
	emoji      TEXT    NOT NULL,
	user_id    INTEGER NOT NULL REFERENCES users (id),
	created_at INTEGER NOT NULL,
	PRIMARY KEY (room_id, seq, emoji, user_id),
	FOREIGN KEY (room_id, seq) REFERENCES messages (room_id, seq)
) STRICT, WITHOUT ROWID;

-- External-content FTS5 index over message bodies. It has no triggers: the
-- group-commit writer (the only code that changes messages) maintains it with
-- one statement per batch, because once FTS5 is part of a transaction it
-- flushes its pending terms to a new segment at every statement savepoint,
-- which with row triggers meant a segment and a merge per message.
CREATE VIRTUAL TABLE messages_fts USING fts5 (
	body,
	content = 'messages',
	content_rowid = 'id',
	tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TABLE files (
	id           TEXT    PRIMARY KEY,
	room_id      INTEGER NOT NULL REFERENCES rooms (id),
	uploader_id  INTEGER NOT NULL REFERENCES users (id),
	name         TEXT    NOT NULL,
	content_type TEXT    NOT NULL,
	size         INTEGER NOT NULL,
	sha256       TEXT    NOT NULL,
	path         TEXT    NOT NULL,
	created_at   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX files_room ON files (room_id, created_at);
