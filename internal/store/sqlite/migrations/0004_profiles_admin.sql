-- Profiles, registration and server administration (issue 14).
--
-- users gains a display name, the time its avatar was last set (0 = none;
-- it versions the avatar URL) and a disabled flag.
ALTER TABLE users ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN avatar_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;

-- Avatars are small (the accounts layer bounds them to 1 MiB) and kept in
-- the database, so that every node of a cluster serves them alike.
CREATE TABLE avatars (
	user_id      INTEGER PRIMARY KEY REFERENCES users (id),
	content_type TEXT    NOT NULL,
	data         BLOB    NOT NULL,
	updated_at   INTEGER NOT NULL
) STRICT;

-- Sign-up invitations. id is the hex SHA-256 of the code; the code itself
-- is never stored. used never passes uses (the CHECK backs the guarded
-- update that spends one).
CREATE TABLE invites (
	id         TEXT    PRIMARY KEY,
	created_by INTEGER NOT NULL REFERENCES users (id),
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	uses       INTEGER NOT NULL CHECK (uses > 0),
	used       INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0 AND used <= uses)
) STRICT, WITHOUT ROWID;

-- Server settings changed at run time (the registration mode), shared by
-- every process on the database.
CREATE TABLE settings (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) STRICT, WITHOUT ROWID;
