package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/sori-dev/sori/internal/store"
)

const userCols = `id, username, password_hash, is_admin, created_at, credentials_gen, credentials_changed_at, display_name, avatar_at, disabled`

func scanUser(row interface{ Scan(...any) error }) (store.User, error) {
	var u store.User
	var created, changed, avatar int64
	err := row.Scan(&u.ID, &u.Username, &u.PasswordHash, &u.IsAdmin, &created, &u.CredentialsGen, &changed,
		&u.DisplayName, &avatar, &u.Disabled)
	u.CreatedAt = fromMicros(created)
	u.CredentialsChangedAt = fromMicros(changed)
	u.AvatarAt = fromMicros(avatar)
	return u, err
}

// CreateUser implements store.Store.
func (s *Store) CreateUser(ctx context.Context, u store.User) (store.User, error) {
	u.CreatedAt = store.Stamp(u.CreatedAt)
	err := s.w.QueryRowContext(ctx, `INSERT INTO users (username, username_key, password_hash, is_admin, created_at)
		VALUES (?, ?, ?, ?, ?) RETURNING id`,
		u.Username, store.FoldName(u.Username), u.PasswordHash, u.IsAdmin, toMicros(u.CreatedAt)).Scan(&u.ID)
	if err != nil {
		return store.User{}, wrap(err, "create user %q", u.Username)
	}
	return u, nil
}

// GetUser implements store.Store.
func (s *Store) GetUser(ctx context.Context, id int64) (store.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, id))
	if err != nil {
		return store.User{}, wrap(err, "get user %d", id)
	}
	return u, nil
}

// GetUserByName implements store.Store.
func (s *Store) GetUserByName(ctx context.Context, name string) (store.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE username_key = ?`, store.FoldName(name)))
	if err != nil {
		return store.User{}, wrap(err, "get user %q", name)
	}
	return u, nil
}

// ListUsers implements store.Store.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY id`)
	if err != nil {
		return nil, wrap(err, "list users")
	}
	users, err := collect(rows, scanUser)
	if err != nil {
		return nil, wrap(err, "list users")
	}
	return users, nil
}

// SetPasswordHash implements store.Store.
func (s *Store) SetPasswordHash(ctx context.Context, userID int64, hash string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, hash, userID)
	if err = mustAffect(res, err); err != nil {
		return wrap(err, "set password of user %d", userID)
	}
	return nil
}

// RevokeCredentials implements store.Store.
func (s *Store) RevokeCredentials(ctx context.Context, userID int64, hash string) (store.User, error) {
	var u store.User
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		u, err = scanUser(tx.QueryRowContext(ctx, `UPDATE users SET credentials_gen = credentials_gen + 1,
			credentials_changed_at = max(?, credentials_changed_at + 1),
			password_hash = CASE WHEN ? = '' THEN password_hash ELSE ? END
			WHERE id = ? RETURNING `+userCols, toMicros(now()), hash, hash, userID))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID)
		return err
	})
	if err != nil {
		return store.User{}, wrap(err, "revoke credentials of user %d", userID)
	}
	return u, nil
}

// CredentialsChangedSince implements store.Store.
func (s *Store) CredentialsChangedSince(ctx context.Context, since time.Time) ([]store.User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+userCols+` FROM users
		WHERE credentials_changed_at > ? ORDER BY credentials_changed_at, id`, max(0, toMicros(since)))
	if err != nil {
		return nil, wrap(err, "credential changes")
	}
	users, err := collect(rows, scanUser)
	if err != nil {
		return nil, wrap(err, "credential changes")
	}
	return users, nil
}

// collect scans every row with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// mustAffect turns an update or delete that matched no row into
// sql.ErrNoRows (which classify maps to store.ErrNotFound).
func mustAffect(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return sql.ErrNoRows
	}
	return nil
}
