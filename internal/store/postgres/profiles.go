package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sori-dev/sori/internal/store"
)

// Profiles, invites, settings and the admin room list (issue 14).

// GetUsers implements store.Store.
func (s *Store) GetUsers(ctx context.Context, ids []int64) ([]store.User, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	users, err := collect(ctx, s, s.pool, scanUser, `SELECT `+userCols+` FROM users WHERE id = ANY($1) ORDER BY id`, ids)
	if err != nil {
		return nil, s.wrap(err, "get users")
	}
	return users, nil
}

// SetDisplayName implements store.Store.
func (s *Store) SetDisplayName(ctx context.Context, userID int64, name string) (store.User, error) {
	u, err := scanUser(s.queryRow(ctx, `UPDATE users SET display_name = $1 WHERE id = $2 RETURNING `+userCols, name, userID))
	if err != nil {
		return store.User{}, s.wrap(err, "set display name of user %d", userID)
	}
	return u, nil
}

// SetAvatar implements store.Store. AvatarAt only moves forward, so that
// two changes in one microsecond still give two URLs.
func (s *Store) SetAvatar(ctx context.Context, userID int64, a store.Avatar) (store.User, error) {
	var u store.User
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if len(a.Data) == 0 {
			u, err = scanUser(tx.QueryRow(ctx, `UPDATE users SET avatar_at = NULL WHERE id = $1 RETURNING `+userCols, userID))
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `DELETE FROM avatars WHERE user_id = $1`, userID)
			return err
		}
		u, err = scanUser(tx.QueryRow(ctx, `UPDATE users SET avatar_at = greatest($1::timestamptz, avatar_at + interval '1 microsecond')
			WHERE id = $2 RETURNING `+userCols, now(), userID))
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO avatars (user_id, content_type, data, updated_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (user_id) DO UPDATE SET content_type = excluded.content_type, data = excluded.data, updated_at = excluded.updated_at`,
			userID, a.ContentType, a.Data, u.AvatarAt)
		return err
	})
	if err != nil {
		return store.User{}, s.wrap(err, "set avatar of user %d", userID)
	}
	return u, nil
}

// GetAvatar implements store.Store.
func (s *Store) GetAvatar(ctx context.Context, userID int64) (store.Avatar, error) {
	a := store.Avatar{UserID: userID}
	err := s.queryRow(ctx, `SELECT content_type, data, updated_at FROM avatars WHERE user_id = $1`, userID).
		Scan(&a.ContentType, &a.Data, &a.UpdatedAt)
	if err != nil {
		return store.Avatar{}, s.wrap(err, "get avatar of user %d", userID)
	}
	a.UpdatedAt = a.UpdatedAt.UTC()
	return a, nil
}

// SetDisabled implements store.Store.
func (s *Store) SetDisabled(ctx context.Context, userID int64, disabled bool) (store.User, error) {
	var u store.User
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if !disabled {
			u, err = scanUser(tx.QueryRow(ctx, `UPDATE users SET disabled = false WHERE id = $1 RETURNING `+userCols, userID))
			return err
		}
		u, err = scanUser(tx.QueryRow(ctx, `UPDATE users SET disabled = true, credentials_gen = credentials_gen + 1,
			credentials_changed_at = greatest($1::timestamptz, credentials_changed_at + interval '1 microsecond')
			WHERE id = $2 RETURNING `+userCols, now(), userID))
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID)
		return err
	})
	if err != nil {
		return store.User{}, s.wrap(err, "set disabled=%t of user %d", disabled, userID)
	}
	return u, nil
}

const inviteCols = `id, created_by, created_at, expires_at, uses, used`

func scanInvite(row pgx.Row) (store.Invite, error) {
	var inv store.Invite
	err := row.Scan(&inv.ID, &inv.CreatedBy, &inv.CreatedAt, &inv.ExpiresAt, &inv.Uses, &inv.Used)
	inv.CreatedAt, inv.ExpiresAt = inv.CreatedAt.UTC(), inv.ExpiresAt.UTC()
	return inv, err
}

// CreateInvite implements store.Store. With a cap, the transaction locks
// the invites table against other creators (SHARE ROW EXCLUSIVE conflicts
// with itself, so the count cannot go stale before the insert on any node);
// sign-ups spending a use wait for it only that long.
func (s *Store) CreateInvite(ctx context.Context, inv store.Invite, max int) (store.Invite, error) {
	inv.CreatedAt, inv.ExpiresAt, inv.Used = store.Stamp(inv.CreatedAt), store.Stamp(inv.ExpiresAt), 0
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if max > 0 {
			if _, err := tx.Exec(ctx, `LOCK TABLE invites IN SHARE ROW EXCLUSIVE MODE`); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM invites WHERE used >= uses OR expires_at <= $1`, inv.CreatedAt); err != nil {
				return err
			}
			var live int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM invites`).Scan(&live); err != nil {
				return err
			}
			if live >= max {
				return store.ErrLimit
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO invites (`+inviteCols+`) VALUES ($1, $2, $3, $4, $5, 0)`,
			inv.ID, inv.CreatedBy, inv.CreatedAt, inv.ExpiresAt, inv.Uses)
		return err
	})
	if err != nil {
		return store.Invite{}, s.wrap(err, "create invite")
	}
	return inv, nil
}

// ListInvites implements store.Store.
func (s *Store) ListInvites(ctx context.Context) ([]store.Invite, error) {
	out, err := collect(ctx, s, s.pool, scanInvite, `SELECT `+inviteCols+` FROM invites ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, s.wrap(err, "list invites")
	}
	return out, nil
}

// DeleteInvite implements store.Store.
func (s *Store) DeleteInvite(ctx context.Context, id string) error {
	if err := s.execOne(ctx, `DELETE FROM invites WHERE id = $1`, id); err != nil {
		return s.wrap(err, "delete invite")
	}
	return nil
}

// CreateUserWithInvite implements store.Store. The guarded update locks the
// invite's row: a concurrent sign-up waits for this transaction and then
// re-checks used < uses against the committed count.
func (s *Store) CreateUserWithInvite(ctx context.Context, u store.User, inviteID string, at time.Time) (store.User, error) {
	u.CreatedAt = store.Stamp(u.CreatedAt)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE invites SET used = used + 1 WHERE id = $1 AND used < uses AND expires_at > $2`, inviteID, at)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return pgx.ErrNoRows
		}
		return tx.QueryRow(ctx, `INSERT INTO users (username, username_key, password_hash, is_admin, created_at)
			VALUES ($1, $2, $3, $4, $5) RETURNING id`,
			u.Username, store.FoldName(u.Username), u.PasswordHash, u.IsAdmin, u.CreatedAt).Scan(&u.ID)
	})
	if err != nil {
		return store.User{}, s.wrap(err, "create user %q with an invite", u.Username)
	}
	return u, nil
}

// GetSetting implements store.Store.
func (s *Store) GetSetting(ctx context.Context, key string) (string, error) {
	var v string
	if err := s.queryRow(ctx, `SELECT value FROM settings WHERE key = $1`, key).Scan(&v); err != nil {
		return "", s.wrap(err, "get setting %q", key)
	}
	return v, nil
}

// SetSetting implements store.Store.
func (s *Store) SetSetting(ctx context.Context, key, value string) error {
	if s.isClosed() {
		return store.ErrClosed
	}
	var err error
	if value == "" {
		_, err = s.pool.Exec(ctx, `DELETE FROM settings WHERE key = $1`, key)
	} else {
		_, err = s.pool.Exec(ctx, `INSERT INTO settings (key, value) VALUES ($1, $2)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	}
	if err != nil {
		return s.wrap(err, "set setting %q", key)
	}
	return nil
}

// ListRooms implements store.Store.
func (s *Store) ListRooms(ctx context.Context, after int64, limit int) ([]store.RoomInfo, error) {
	out, err := collect(ctx, s, s.pool, func(row pgx.Row) (store.RoomInfo, error) {
		var ri store.RoomInfo
		err := row.Scan(scanRoomInto(&ri.Room, &ri.Members)...)
		ri.CreatedAt = ri.CreatedAt.UTC()
		return ri, err
	}, `SELECT `+roomCols+`, (SELECT count(*) FROM members m WHERE m.room_id = r.id)
		FROM rooms r WHERE r.id > $1 ORDER BY r.id LIMIT $2`, after, store.ClampLimit(limit))
	if err != nil {
		return nil, s.wrap(err, "list rooms")
	}
	return out, nil
}
