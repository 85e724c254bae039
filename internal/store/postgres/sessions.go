package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sori-dev/sori/internal/store"
)

const sessionCols = `id, kind, user_id, label, csrf_token, created_at, expires_at`

func scanSession(row pgx.Row) (store.Session, error) {
	var ss store.Session
	var expires pgtype.Timestamptz
	err := row.Scan(&ss.ID, &ss.Kind, &ss.UserID, &ss.Label, &ss.CSRFToken, &ss.CreatedAt, &expires)
	ss.CreatedAt, ss.ExpiresAt = ss.CreatedAt.UTC(), fromTstz(expires)
	return ss, err
}

// CreateSession implements store.Store.
func (s *Store) CreateSession(ctx context.Context, token string, ss store.Session) (store.Session, error) {
	ss.ID = store.TokenID(token)
	ss.CreatedAt = store.Stamp(ss.CreatedAt)
	if !ss.ExpiresAt.IsZero() {
		ss.ExpiresAt = store.Stamp(ss.ExpiresAt)
	}
	err := s.execOne(ctx, `INSERT INTO sessions (`+sessionCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		ss.ID, string(ss.Kind), ss.UserID, ss.Label, ss.CSRFToken, ss.CreatedAt, tstz(ss.ExpiresAt))
	if err != nil {
		return store.Session{}, s.wrap(err, "create %s session for user %d", ss.Kind, ss.UserID)
	}
	return ss, nil
}

// CreateSessionCapped implements store.Store. The user's row, locked FOR NO
// KEY UPDATE, makes the count and the insert one step against every other
// capped creation for that user, on every node; other users, and the
// foreign-key checks of other inserts (FOR KEY SHARE), are not held up.
func (s *Store) CreateSessionCapped(ctx context.Context, token string, ss store.Session, max int) (store.Session, error) {
	ss.ID = store.TokenID(token)
	ss.CreatedAt = store.Stamp(ss.CreatedAt)
	if !ss.ExpiresAt.IsZero() {
		ss.ExpiresAt = store.Stamp(ss.ExpiresAt)
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var id int64
		if err := tx.QueryRow(ctx, `SELECT id FROM users WHERE id = $1 FOR NO KEY UPDATE`, ss.UserID).Scan(&id); err != nil {
			return err // no such user: ErrNotFound
		}
		var live int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM sessions WHERE user_id = $1 AND kind = $2
			AND (expires_at IS NULL OR expires_at > $3)`, ss.UserID, string(ss.Kind), ss.CreatedAt).Scan(&live); err != nil {
			return err
		}
		if live >= max {
			return store.ErrLimit
		}
		_, err := tx.Exec(ctx, `INSERT INTO sessions (`+sessionCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			ss.ID, string(ss.Kind), ss.UserID, ss.Label, ss.CSRFToken, ss.CreatedAt, tstz(ss.ExpiresAt))
		return err
	})
	if err != nil {
		return store.Session{}, s.wrap(err, "create capped %s session for user %d", ss.Kind, ss.UserID)
	}
	return ss, nil
}

// GetSession implements store.Store.
func (s *Store) GetSession(ctx context.Context, token string) (store.Session, error) {
	ss, err := scanSession(s.queryRow(ctx, `SELECT `+sessionCols+` FROM sessions
		WHERE id = $1 AND (expires_at IS NULL OR expires_at > $2)`, store.TokenID(token), time.Now()))
	if err != nil {
		return store.Session{}, s.wrap(err, "get session")
	}
	return ss, nil
}

// ListSessions implements store.Store.
func (s *Store) ListSessions(ctx context.Context, userID int64) ([]store.Session, error) {
	out, err := collect(ctx, s, s.pool, scanSession, `SELECT `+sessionCols+` FROM sessions WHERE user_id = $1
		ORDER BY created_at DESC, id`, userID)
	if err != nil {
		return nil, s.wrap(err, "list sessions of user %d", userID)
	}
	return out, nil
}

// DeleteSession implements store.Store.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if err := s.execOne(ctx, `DELETE FROM sessions WHERE id = $1`, id); err != nil {
		return s.wrap(err, "delete session")
	}
	return nil
}

// DeleteUserSessions implements store.Store.
func (s *Store) DeleteUserSessions(ctx context.Context, userID int64) error {
	if s.isClosed() {
		return s.wrap(store.ErrClosed, "delete sessions of user %d", userID)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID); err != nil {
		return s.wrap(err, "delete sessions of user %d", userID)
	}
	return nil
}

// DeleteExpiredSessions implements store.Store.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	if s.isClosed() {
		return 0, s.wrap(store.ErrClosed, "delete expired sessions")
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at <= $1`, now)
	if err != nil {
		return 0, s.wrap(err, "delete expired sessions")
	}
	return tag.RowsAffected(), nil
}
