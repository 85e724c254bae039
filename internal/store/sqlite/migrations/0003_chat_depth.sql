-- Chat depth (issue 14): idempotent send, mentions and notification levels,
-- threads and pins.
--
-- events gains the pin and unpin kinds, which SQLite can only add to a CHECK
-- by rebuilding the table, and the message fields publications carry:
-- client_id (the author's idempotency key), thread (root seq), mentions
-- (space-separated user ids) and mention_room.
CREATE TABLE events_new (
	room_id      INTEGER NOT NULL REFERENCES rooms (id),
	seq          INTEGER NOT NULL,
	kind         TEXT    NOT NULL CHECK (kind IN ('message', 'edit', 'delete', 'reaction_add', 'reaction_remove', 'pin', 'unpin')),
	user_id      INTEGER NOT NULL REFERENCES users (id),
	body         TEXT    NOT NULL DEFAULT '',
	reply_to     INTEGER NOT NULL DEFAULT 0,
	target       INTEGER NOT NULL DEFAULT 0,
	emoji        TEXT    NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL,
	client_id    TEXT    NOT NULL DEFAULT '',
	thread       INTEGER NOT NULL DEFAULT 0,
	mentions     TEXT    NOT NULL DEFAULT '',
	mention_room INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (room_id, seq)
) STRICT, WITHOUT ROWID;
INSERT INTO events_new (room_id, seq, kind, user_id, body, reply_to, target, emoji, created_at)
	SELECT room_id, seq, kind, user_id, body, reply_to, target, emoji, created_at FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_target ON events (room_id, target) WHERE kind = 'edit';

ALTER TABLE messages ADD COLUMN client_id TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN thread INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN thread_replies INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN thread_last_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN mentions TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN mention_room INTEGER NOT NULL DEFAULT 0;
-- The dedup key of idempotent send; it lives as long as the message does.
CREATE UNIQUE INDEX messages_client ON messages (room_id, author_id, client_id) WHERE client_id <> '';
CREATE INDEX messages_thread ON messages (room_id, thread, seq) WHERE thread > 0;
CREATE INDEX messages_mention_room ON messages (room_id, seq) WHERE mention_room = 1;

-- Who a message mentions by name, for the unread mention count.
CREATE TABLE mentions (
	user_id INTEGER NOT NULL REFERENCES users (id),
	room_id INTEGER NOT NULL,
	seq     INTEGER NOT NULL,
	PRIMARY KEY (user_id, room_id, seq)
) STRICT, WITHOUT ROWID;

ALTER TABLE members ADD COLUMN notify TEXT NOT NULL DEFAULT 'all' CHECK (notify IN ('all', 'mentions', 'none'));

CREATE TABLE pins (
	room_id    INTEGER NOT NULL,
	seq        INTEGER NOT NULL,
	user_id    INTEGER NOT NULL REFERENCES users (id),
	created_at INTEGER NOT NULL,
	PRIMARY KEY (room_id, seq),
	FOREIGN KEY (room_id, seq) REFERENCES messages (room_id, seq)
) STRICT, WITHOUT ROWID;

-- Web Push subscriptions (RFC 8030): a browser's push endpoint and the keys
-- its payloads are encrypted to (RFC 8291).
CREATE TABLE push_subscriptions (
	id         TEXT    PRIMARY KEY,
	user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	endpoint   TEXT    NOT NULL UNIQUE,
	p256dh     TEXT    NOT NULL,
	auth       TEXT    NOT NULL,
	created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id);
