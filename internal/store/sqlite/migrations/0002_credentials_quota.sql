-- Credential revocation (issue 9.1): every password change, admin reset or
-- "log out everywhere" bumps credentials_gen and stamps
-- credentials_changed_at (microseconds, 0 = never); connection tokens issued
-- before it are refused, and a running server polls the index below to close
-- the user's open connections when another process (sori user
-- reset-password) made the change.
ALTER TABLE users ADD COLUMN credentials_gen INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN credentials_changed_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX users_credentials_changed ON users (credentials_changed_at) WHERE credentials_changed_at > 0;

-- Upload quota (issue 9.7): the bytes a user stored are summed per uploader.
CREATE INDEX files_uploader ON files (uploader_id, created_at);
