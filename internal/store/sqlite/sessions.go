package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/sori-dev/sori/internal/store"
)

const sessionCols = `id, kind, user_id, label, csrf_token, created_at, expires_at`

func scanSession(row interface{ Scan(...any) error }) (store.Session, error) {
	var ss store.Session
	var created, expires int64
	err := row.Scan(&ss.ID, &ss.Kind, &ss.UserID, &ss.Label, &ss.CSRFToken, &created, &expires)
	ss.CreatedAt, ss.ExpiresAt = fromMicros(created), fromMicros(expires)
	return ss, err
}

// CreateSession implements store.Store.
func (s *Store) CreateSession(ctx context.Context, token string, ss store.Session) (store.Session, error) {
	ss.ID = store.TokenID(token)
	ss.CreatedAt = store.Stamp(ss.CreatedAt)
	if !ss.ExpiresAt.IsZero() {
		ss.ExpiresAt = store.Stamp(ss.ExpiresAt)
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO sessions (`+sessionCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		ss.ID, string(ss.Kind), ss.UserID, ss.Label, ss.CSRFToken, toMicros(ss.CreatedAt), toMicros(ss.ExpiresAt))
	if err != nil {
		return store.Session{}, wrap(err, "create %s session for user %d", ss.Kind, ss.UserID)
	}
	return ss, nil
}

// CreateSessionCapped implements store.Store. The one write connection
// serializes the transaction, so the count stays true until the insert.
func (s *Store) CreateSessionCapped(ctx context.Context, token string, ss store.Session, max int) (store.Session, error) {
	ss.ID = store.TokenID(token)
	ss.CreatedAt = store.Stamp(ss.CreatedAt)
	if !ss.ExpiresAt.IsZero() {
		ss.ExpiresAt = store.Stamp(ss.ExpiresAt)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var live int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sessions WHERE user_id = ? AND kind = ?
			AND (expires_at = 0 OR expires_at > ?)`, ss.UserID, string(ss.Kind), toMicros(ss.CreatedAt)).Scan(&live); err != nil {
			return err
		}
		if live >= max {
			return store.ErrLimit
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (`+sessionCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			ss.ID, string(ss.Kind), ss.UserID, ss.Label, ss.CSRFToken, toMicros(ss.CreatedAt), toMicros(ss.ExpiresAt))
		return err
	})
	if err != nil {
		return store.Session{}, wrap(err, "create capped %s session for user %d", ss.Kind, ss.UserID)
	}
	return ss, nil
}

// GetSession implements store.Store.
func (s *Store) GetSession(ctx context.Context, token string) (store.Session, error) {
	ss, err := scanSession(s.r.QueryRowContext(ctx, `SELECT `+sessionCols+` FROM sessions
		WHERE id = ? AND (expires_at = 0 OR expires_at > ?)`, store.TokenID(token), toMicros(time.Now())))
	if err != nil {
		return store.Session{}, wrap(err, "get session")
	}
	return ss, nil
}

// ListSessions implements store.Store.
func (s *Store) ListSessions(ctx context.Context, userID int64) ([]store.Session, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+sessionCols+` FROM sessions WHERE user_id = ?
		ORDER BY created_at DESC, id`, userID)
	if err != nil {
		return nil, wrap(err, "list sessions of user %d", userID)
	}
	out, err := collect(rows, scanSession)
	if err != nil {
		return nil, wrap(err, "list sessions of user %d", userID)
	}
	return out, nil
}

// DeleteSession implements store.Store.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM sessions WHERE id = ?`, id)
	if err = mustAffect(res, err); err != nil {
		return wrap(err, "delete session")
	}
	return nil
}

// DeleteUserSessions implements store.Store.
func (s *Store) DeleteUserSessions(ctx context.Context, userID int64) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID); err != nil {
		return wrap(err, "delete sessions of user %d", userID)
	}
	return nil
}

// DeleteExpiredSessions implements store.Store.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at > 0 AND expires_at <= ?`, toMicros(now))
	if err != nil {
		return 0, wrap(err, "delete expired sessions")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, wrap(err, "delete expired sessions")
	}
	return n, nil
}
