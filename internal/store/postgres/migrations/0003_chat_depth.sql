-- Chat depth (issue 14): idempotent send, mentions and notification levels,
-- threads and pins. See the SQLite store's 0003 for what each column is.
ALTER TABLE events DROP CONSTRAINT events_kind_check;
ALTER TABLE events ADD CONSTRAINT events_kind_check
	CHECK (kind IN ('message', 'edit', 'delete', 'reaction_add', 'reaction_remove', 'pin', 'unpin'));
ALTER TABLE events ADD COLUMN client_id text NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN thread bigint NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN mentions bigint[] NOT NULL DEFAULT '{}';
ALTER TABLE events ADD COLUMN mention_room boolean NOT NULL DEFAULT false;

ALTER TABLE messages ADD COLUMN client_id text NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN thread bigint NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN thread_replies bigint NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN thread_last_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN mentions bigint[] NOT NULL DEFAULT '{}';
ALTER TABLE messages ADD COLUMN mention_room boolean NOT NULL DEFAULT false;
-- The dedup key of idempotent send; it lives as long as the message does.
-- The writer locks the room before it reads this key, so two nodes
-- appending the same key serialize and the second sees the first.
CREATE UNIQUE INDEX messages_client ON messages (room_id, author_id, client_id) WHERE client_id <> '';
CREATE INDEX messages_thread ON messages (room_id, thread, seq) WHERE thread > 0;
CREATE INDEX messages_mention_room ON messages (room_id, seq) WHERE mention_room;

CREATE TABLE mentions (
	user_id bigint NOT NULL REFERENCES users (id),
	room_id bigint NOT NULL,
	seq     bigint NOT NULL,
	PRIMARY KEY (user_id, room_id, seq)
);

ALTER TABLE members ADD COLUMN notify text NOT NULL DEFAULT 'all' CHECK (notify IN ('all', 'mentions', 'none'));

CREATE TABLE pins (
	room_id    bigint      NOT NULL,
	seq        bigint      NOT NULL,
	user_id    bigint      NOT NULL REFERENCES users (id),
	created_at timestamptz NOT NULL,
	PRIMARY KEY (room_id, seq),
	FOREIGN KEY (room_id, seq) REFERENCES messages (room_id, seq)
);

CREATE TABLE push_subscriptions (
	id         text        PRIMARY KEY,
	user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	endpoint   text        NOT NULL UNIQUE,
	p256dh     text        NOT NULL,
	auth       text        NOT NULL,
	created_at timestamptz NOT NULL
);
CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id);
