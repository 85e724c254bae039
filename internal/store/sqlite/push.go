package sqlite

import (
	"context"
	"database/sql"

	"github.com/sori-dev/sori/internal/store"
)

// Web Push subscriptions (issue 14).

// AddPushSubscription implements store.Store.
func (s *Store) AddPushSubscription(ctx context.Context, p store.PushSubscription, max int) (store.PushSubscription, error) {
	p.ID, p.CreatedAt = randomID(16), now()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM push_subscriptions WHERE endpoint = ?`, p.Endpoint); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			p.ID, p.UserID, p.Endpoint, p.P256DH, p.Auth, toMicros(p.CreatedAt)); err != nil {
			return classify(err)
		}
		// Keep the newest max: the oldest are the likeliest to be dead.
		_, err := tx.ExecContext(ctx, `DELETE FROM push_subscriptions WHERE user_id = ?1 AND id NOT IN
			(SELECT id FROM push_subscriptions WHERE user_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2)`, p.UserID, max)
		return err
	})
	if err != nil {
		return store.PushSubscription{}, wrap(err, "add push subscription of user %d", p.UserID)
	}
	return p, nil
}

// ListPushSubscriptions implements store.Store.
func (s *Store) ListPushSubscriptions(ctx context.Context, userID int64) ([]store.PushSubscription, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, user_id, endpoint, p256dh, auth, created_at FROM push_subscriptions
		WHERE user_id = ? ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, wrap(err, "list push subscriptions of user %d", userID)
	}
	out, err := collect(rows, func(row interface{ Scan(...any) error }) (store.PushSubscription, error) {
		var p store.PushSubscription
		err := row.Scan(&p.ID, &p.UserID, &p.Endpoint, &p.P256DH, &p.Auth, (*micros)(&p.CreatedAt))
		return p, err
	})
	if err != nil {
		return nil, wrap(err, "list push subscriptions of user %d", userID)
	}
	return out, nil
}

// DeletePushSubscription implements store.Store.
func (s *Store) DeletePushSubscription(ctx context.Context, userID int64, id string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM push_subscriptions WHERE id = ? AND user_id = ?`, id, userID)
	if err = mustAffect(res, err); err != nil {
		return wrap(err, "delete push subscription %s of user %d", id, userID)
	}
	return nil
}
