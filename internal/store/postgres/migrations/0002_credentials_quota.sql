-- Credential revocation (issue 9.1): see the SQLite migration of the same
-- name. credentials_changed_at is NULL until the first revocation.
ALTER TABLE users ADD COLUMN credentials_gen bigint NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN credentials_changed_at timestamptz;
CREATE INDEX users_credentials_changed ON users (credentials_changed_at) WHERE credentials_changed_at IS NOT NULL;

-- Upload quota (issue 9.7): the bytes a user stored are summed per uploader.
CREATE INDEX files_uploader ON files (uploader_id, created_at);
