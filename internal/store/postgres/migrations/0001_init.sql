-- Sori chat store for PostgreSQL, version 1. Times are timestamptz (PostgreSQL
-- keeps microseconds, as the store contract says); NULL means "never" or
-- "none". Several Sori nodes share one database, so everything another node
-- must see lives here, including the head of each room's log.

CREATE TABLE users (
	id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	username      text        NOT NULL,
	username_key  text        NOT NULL UNIQUE, -- store.FoldName(username)
	password_hash text        NOT NULL,
	is_admin      boolean     NOT NULL DEFAULT false,
	created_at    timestamptz NOT NULL
);

-- Browser sessions and API tokens. id is the hex SHA-256 of the token; the
-- token itself is never stored.
CREATE TABLE sessions (
	id         text        PRIMARY KEY,
	kind       text        NOT NULL CHECK (kind IN ('web', 'api')),
	user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	label      text        NOT NULL DEFAULT '',
	csrf_token text        NOT NULL DEFAULT '',
	created_at timestamptz NOT NULL,
	expires_at timestamptz
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at) WHERE expires_at IS NOT NULL;

-- last_seq is the head of the room's log. Unlike the SQLite store (one
-- writer that caches heads), several nodes append here: each append
-- transaction locks the room row, reads last_seq and writes it back, so a
-- room's appends are serialized, commit order is seq order and a rolled-back
-- batch uses no seq. last_event_at orders a user's rooms by activity.
-- name_key is NULL for direct rooms, which are found by direct_key
-- ('<low user id>:<high user id>'), so no group room name can collide with one.
CREATE TABLE rooms (
	id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name          text        NOT NULL,
	name_key      text        UNIQUE,
	direct_key    text        UNIQUE,
	title         text        NOT NULL DEFAULT '',
	topic         text        NOT NULL DEFAULT '',
	kind          text        NOT NULL CHECK (kind IN ('public', 'private', 'direct')),
	created_by    bigint      NOT NULL REFERENCES users (id),
	created_at    timestamptz NOT NULL,
	epoch         text        NOT NULL,
	last_seq      bigint      NOT NULL DEFAULT 0,
	last_event_at timestamptz,
	CHECK ((kind = 'direct') = (direct_key IS NOT NULL AND name_key IS NULL))
);

CREATE TABLE members (
	room_id       bigint      NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
	user_id       bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	role          text        NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
	joined_at     timestamptz NOT NULL,
	last_read_seq bigint      NOT NULL DEFAULT 0,
	PRIMARY KEY (room_id, user_id)
);
CREATE INDEX members_user ON members (user_id, room_id);

-- The append-only log. seq is per room, from 1, without gaps; it is the
-- real-time channel offset.
CREATE TABLE events (
	room_id    bigint      NOT NULL REFERENCES rooms (id),
	seq        bigint      NOT NULL,
	kind       text        NOT NULL CHECK (kind IN ('message', 'edit', 'delete', 'reaction_add', 'reaction_remove')),
	user_id    bigint      NOT NULL REFERENCES users (id),
	body       text        NOT NULL DEFAULT '',
	reply_to   bigint      NOT NULL DEFAULT 0,
	target     bigint      NOT NULL DEFAULT 0,
	emoji      text        NOT NULL DEFAULT '',
	created_at timestamptz NOT NULL,
	PRIMARY KEY (room_id, seq)
);
-- Finds a message's edit events, whose bodies a delete scrubs.
CREATE INDEX events_target ON events (room_id, target) WHERE kind = 'edit';

-- The current state of each message, kept in step with the log in the same
-- transaction. tsv is the search index entry: lexemes computed by the store
-- (lower case, diacritics removed, as the SQLite store's unicode61 tokenizer
-- with remove_diacritics 2 does), so indexing and querying share one
-- tokenizer and no text-search configuration or extension is needed.
CREATE TABLE messages (
	room_id    bigint      NOT NULL REFERENCES rooms (id),
	seq        bigint      NOT NULL,
	author_id  bigint      NOT NULL REFERENCES users (id),
	body       text        NOT NULL,
	reply_to   bigint      NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL,
	edited_at  timestamptz,
	deleted    boolean     NOT NULL DEFAULT false,
	tsv        tsvector    NOT NULL,
	PRIMARY KEY (room_id, seq)
);
CREATE INDEX messages_tsv ON messages USING gin (tsv);

CREATE TABLE reactions (
	room_id    bigint      NOT NULL,
	seq        bigint      NOT NULL,
	emoji      text        NOT NULL,
	user_id    bigint      NOT NULL REFERENCES users (id),
	created_at timestamptz NOT NULL,
	PRIMARY KEY (room_id, seq, emoji, user_id),
	FOREIGN KEY (room_id, seq) REFERENCES messages (room_id, seq)
);

CREATE TABLE files (
	id           text        PRIMARY KEY,
	room_id      bigint      NOT NULL REFERENCES rooms (id),
	uploader_id  bigint      NOT NULL REFERENCES users (id),
	name         text        NOT NULL,
	content_type text        NOT NULL,
	size         bigint      NOT NULL,
	sha256       text        NOT NULL,
	path         text        NOT NULL,
	created_at   timestamptz NOT NULL
);
CREATE INDEX files_room ON files (room_id, created_at, id);

-- Uploaded bytes, so that every node serves every file. Kept apart from the
-- metadata so listing files never reads them; a blob may be written before
-- its files row (an upload stores its bytes first).
CREATE TABLE file_blobs (
	id         text        PRIMARY KEY,
	data       bytea       NOT NULL,
	created_at timestamptz NOT NULL
);
