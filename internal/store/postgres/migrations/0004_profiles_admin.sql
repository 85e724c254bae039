-- Profiles, registration and server administration (issue 14): see the
-- SQLite migration of the same name. avatar_at is NULL while the user has
-- no avatar.
ALTER TABLE users ADD COLUMN display_name text NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN avatar_at timestamptz;
ALTER TABLE users ADD COLUMN disabled boolean NOT NULL DEFAULT false;

CREATE TABLE avatars (
	user_id      bigint      PRIMARY KEY REFERENCES users (id),
	content_type text        NOT NULL,
	data         bytea       NOT NULL,
	updated_at   timestamptz NOT NULL
);

CREATE TABLE invites (
	id         text        PRIMARY KEY,
	created_by bigint      NOT NULL REFERENCES users (id),
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	uses       integer     NOT NULL CHECK (uses > 0),
	used       integer     NOT NULL DEFAULT 0 CHECK (used >= 0 AND used <= uses)
);

CREATE TABLE settings (
	key   text PRIMARY KEY,
	value text NOT NULL
);
