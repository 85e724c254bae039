package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sori-dev/sori/internal/store"
)

const userCols = `id, username, password_hash, is_admin, created_at, credentials_gen, credentials_changed_at, display_name, avatar_at, disabled`

func scanUser(row pgx.Row) (store.User, error) {
	var u store.User
	var changed, avatar *time.Time
	err := row.Scan(&u.ID, &u.Username, &u.PasswordHash, &u.IsAdmin, &u.CreatedAt, &u.CredentialsGen, &changed,
		&u.DisplayName, &avatar, &u.Disabled)
	u.CreatedAt = u.CreatedAt.UTC()
	if changed != nil {
		u.CredentialsChangedAt = changed.UTC()
	}
	if avatar != nil {
		u.AvatarAt = avatar.UTC()
	}
	return u, err
}

// CreateUser implements store.Store.
func (s *Store) CreateUser(ctx context.Context, u store.User) (store.User, error) {
	u.CreatedAt = store.Stamp(u.CreatedAt)
	err := s.queryRow(ctx, `INSERT INTO users (username, username_key, password_hash, is_admin, created_at)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		u.Username, store.FoldName(u.Username), u.PasswordHash, u.IsAdmin, u.CreatedAt).Scan(&u.ID)
	if err != nil {
		return store.User{}, s.wrap(err, "create user %q", u.Username)
	}
	return u, nil
}

// GetUser implements store.Store.
func (s *Store) GetUser(ctx context.Context, id int64) (store.User, error) {
	u, err := scanUser(s.queryRow(ctx, `SELECT `+userCols+` FROM users WHERE id = $1`, id))
	if err != nil {
		return store.User{}, s.wrap(err, "get user %d", id)
	}
	return u, nil
}

// GetUserByName implements store.Store.
func (s *Store) GetUserByName(ctx context.Context, name string) (store.User, error) {
	u, err := scanUser(s.queryRow(ctx, `SELECT `+userCols+` FROM users WHERE username_key = $1`, store.FoldName(name)))
	if err != nil {
		return store.User{}, s.wrap(err, "get user %q", name)
	}
	return u, nil
}

// ListUsers implements store.Store.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	users, err := collect(ctx, s, s.pool, scanUser, `SELECT `+userCols+` FROM users ORDER BY id`)
	if err != nil {
		return nil, s.wrap(err, "list users")
	}
	return users, nil
}

// SetPasswordHash implements store.Store.
func (s *Store) SetPasswordHash(ctx context.Context, userID int64, hash string) error {
	if err := s.execOne(ctx, `UPDATE users SET password_hash = $1 WHERE id = $2`, hash, userID); err != nil {
		return s.wrap(err, "set password of user %d", userID)
	}
	return nil
}

// RevokeCredentials implements store.Store. The stamp is strictly later
// than the previous one, so that CredentialsChangedSince cursors never skip
// a revocation made in the same microsecond.
func (s *Store) RevokeCredentials(ctx context.Context, userID int64, hash string) (store.User, error) {
	var u store.User
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		u, err = scanUser(tx.QueryRow(ctx, `UPDATE users SET credentials_gen = credentials_gen + 1,
			credentials_changed_at = greatest($1::timestamptz, credentials_changed_at + interval '1 microsecond'),
			password_hash = CASE WHEN $2 = '' THEN password_hash ELSE $2 END
			WHERE id = $3 RETURNING `+userCols, now(), hash, userID))
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID)
		return err
	})
	if err != nil {
		return store.User{}, s.wrap(err, "revoke credentials of user %d", userID)
	}
	return u, nil
}

// CredentialsChangedSince implements store.Store.
func (s *Store) CredentialsChangedSince(ctx context.Context, since time.Time) ([]store.User, error) {
	users, err := collect(ctx, s, s.pool, scanUser, `SELECT `+userCols+` FROM users
		WHERE credentials_changed_at > $1 ORDER BY credentials_changed_at, id`, since)
	if err != nil {
		return nil, s.wrap(err, "credential changes")
	}
	return users, nil
}
