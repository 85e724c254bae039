package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"github.com/sori-dev/sori/internal/store"
)

// Profiles, invites, settings and the admin room list (issue 14).

// GetUsers implements store.Store. Ids go in chunks, below SQLite's
// limit on bound variables.
func (s *Store) GetUsers(ctx context.Context, ids []int64) ([]store.User, error) {
	const chunk = 500
	var users []store.User
	for len(ids) > 0 {
		n := min(chunk, len(ids))
		args := make([]any, n)
		for i, id := range ids[:n] {
			args[i] = id
		}
		ids = ids[n:]
		rows, err := s.r.QueryContext(ctx, `SELECT `+userCols+` FROM users WHERE id IN (?`+strings.Repeat(", ?", n-1)+`)`, args...)
		if err != nil {
			return nil, wrap(err, "get users")
		}
		got, err := collect(rows, scanUser)
		if err != nil {
			return nil, wrap(err, "get users")
		}
		users = append(users, got...)
	}
	slices.SortFunc(users, func(a, b store.User) int { return cmp.Compare(a.ID, b.ID) })
	return users, nil
}

// SetDisplayName implements store.Store.
func (s *Store) SetDisplayName(ctx context.Context, userID int64, name string) (store.User, error) {
	u, err := scanUser(s.w.QueryRowContext(ctx, `UPDATE users SET display_name = ? WHERE id = ? RETURNING `+userCols, name, userID))
	if err != nil {
		return store.User{}, wrap(err, "set display name of user %d", userID)
	}
	return u, nil
}

// SetAvatar implements store.Store. AvatarAt only moves forward, so that
// two changes in one microsecond still give two URLs.
func (s *Store) SetAvatar(ctx context.Context, userID int64, a store.Avatar) (store.User, error) {
	var u store.User
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if len(a.Data) == 0 {
			u, err = scanUser(tx.QueryRowContext(ctx, `UPDATE users SET avatar_at = 0 WHERE id = ? RETURNING `+userCols, userID))
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `DELETE FROM avatars WHERE user_id = ?`, userID)
			return err
		}
		u, err = scanUser(tx.QueryRowContext(ctx, `UPDATE users SET avatar_at = max(?, avatar_at + 1) WHERE id = ? RETURNING `+userCols,
			toMicros(now()), userID))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO avatars (user_id, content_type, data, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (user_id) DO UPDATE SET content_type = excluded.content_type, data = excluded.data, updated_at = excluded.updated_at`,
			userID, a.ContentType, a.Data, toMicros(u.AvatarAt))
		return err
	})
	if err != nil {
		return store.User{}, wrap(err, "set avatar of user %d", userID)
	}
	return u, nil
}

// GetAvatar implements store.Store.
func (s *Store) GetAvatar(ctx context.Context, userID int64) (store.Avatar, error) {
	a := store.Avatar{UserID: userID}
	err := s.r.QueryRowContext(ctx, `SELECT content_type, data, updated_at FROM avatars WHERE user_id = ?`, userID).
		Scan(&a.ContentType, &a.Data, (*micros)(&a.UpdatedAt))
	if err != nil {
		return store.Avatar{}, wrap(err, "get avatar of user %d", userID)
	}
	return a, nil
}

// SetDisabled implements store.Store.
func (s *Store) SetDisabled(ctx context.Context, userID int64, disabled bool) (store.User, error) {
	var u store.User
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if !disabled {
			u, err = scanUser(tx.QueryRowContext(ctx, `UPDATE users SET disabled = 0 WHERE id = ? RETURNING `+userCols, userID))
			return err
		}
		u, err = scanUser(tx.QueryRowContext(ctx, `UPDATE users SET disabled = 1, credentials_gen = credentials_gen + 1,
			credentials_changed_at = max(?, credentials_changed_at + 1)
			WHERE id = ? RETURNING `+userCols, toMicros(now()), userID))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID)
		return err
	})
	if err != nil {
		return store.User{}, wrap(err, "set disabled=%t of user %d", disabled, userID)
	}
	return u, nil
}

const inviteCols = `id, created_by, created_at, expires_at, uses, used`

func scanInvite(row interface{ Scan(...any) error }) (store.Invite, error) {
	var inv store.Invite
	err := row.Scan(&inv.ID, &inv.CreatedBy, (*micros)(&inv.CreatedAt), (*micros)(&inv.ExpiresAt), &inv.Uses, &inv.Used)
	return inv, err
}

// CreateInvite implements store.Store. The one write connection
// serializes the transaction, so the count stays true until the insert.
func (s *Store) CreateInvite(ctx context.Context, inv store.Invite, max int) (store.Invite, error) {
	inv.CreatedAt, inv.ExpiresAt, inv.Used = store.Stamp(inv.CreatedAt), store.Stamp(inv.ExpiresAt), 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if max > 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM invites WHERE used >= uses OR expires_at <= ?`, toMicros(inv.CreatedAt)); err != nil {
				return err
			}
			var live int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM invites`).Scan(&live); err != nil {
				return err
			}
			if live >= max {
				return store.ErrLimit
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO invites (`+inviteCols+`) VALUES (?, ?, ?, ?, ?, 0)`,
			inv.ID, inv.CreatedBy, toMicros(inv.CreatedAt), toMicros(inv.ExpiresAt), inv.Uses)
		return err
	})
	if err != nil {
		return store.Invite{}, wrap(err, "create invite")
	}
	return inv, nil
}

// ListInvites implements store.Store.
func (s *Store) ListInvites(ctx context.Context) ([]store.Invite, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+inviteCols+` FROM invites ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, wrap(err, "list invites")
	}
	out, err := collect(rows, scanInvite)
	if err != nil {
		return nil, wrap(err, "list invites")
	}
	return out, nil
}

// DeleteInvite implements store.Store.
func (s *Store) DeleteInvite(ctx context.Context, id string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM invites WHERE id = ?`, id)
	if err = mustAffect(res, err); err != nil {
		return wrap(err, "delete invite")
	}
	return nil
}

// CreateUserWithInvite implements store.Store. The one write connection
// serializes the transactions; the guarded update is what spends a use.
func (s *Store) CreateUserWithInvite(ctx context.Context, u store.User, inviteID string, at time.Time) (store.User, error) {
	u.CreatedAt = store.Stamp(u.CreatedAt)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE invites SET used = used + 1 WHERE id = ? AND used < uses AND expires_at > ?`,
			inviteID, toMicros(at))
		if err := mustAffect(res, err); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `INSERT INTO users (username, username_key, password_hash, is_admin, created_at)
			VALUES (?, ?, ?, ?, ?) RETURNING id`,
			u.Username, store.FoldName(u.Username), u.PasswordHash, u.IsAdmin, toMicros(u.CreatedAt)).Scan(&u.ID)
	})
	if err != nil {
		return store.User{}, wrap(err, "create user %q with an invite", u.Username)
	}
	return u, nil
}

// GetSetting implements store.Store.
func (s *Store) GetSetting(ctx context.Context, key string) (string, error) {
	var v string
	if err := s.r.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v); err != nil {
		return "", wrap(err, "get setting %q", key)
	}
	return v, nil
}

// SetSetting implements store.Store.
func (s *Store) SetSetting(ctx context.Context, key, value string) error {
	var err error
	if value == "" {
		_, err = s.w.ExecContext(ctx, `DELETE FROM settings WHERE key = ?`, key)
	} else {
		_, err = s.w.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	}
	if err != nil {
		return wrap(err, "set setting %q", key)
	}
	return nil
}

// ListRooms implements store.Store.
func (s *Store) ListRooms(ctx context.Context, after int64, limit int) ([]store.RoomInfo, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+roomCols+`, (SELECT count(*) FROM members m WHERE m.room_id = r.id)
		FROM rooms r WHERE r.id > ? ORDER BY r.id LIMIT ?`, after, store.ClampLimit(limit))
	if err != nil {
		return nil, wrap(err, "list rooms")
	}
	out, err := collect(rows, func(row interface{ Scan(...any) error }) (store.RoomInfo, error) {
		var ri store.RoomInfo
		err := row.Scan(scanRoomInto(&ri.Room, &ri.Members)...)
		return ri, err
	})
	if err != nil {
		return nil, wrap(err, "list rooms")
	}
	return out, nil
}
