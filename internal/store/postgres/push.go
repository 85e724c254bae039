package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/sori-dev/sori/internal/store"
)

// Web Push subscriptions (issue 14).

// AddPushSubscription implements store.Store.
func (s *Store) AddPushSubscription(ctx context.Context, p store.PushSubscription, max int) (store.PushSubscription, error) {
	p.ID, p.CreatedAt = randomID(16), now()
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM push_subscriptions WHERE endpoint = $1`, p.Endpoint); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			p.ID, p.UserID, p.Endpoint, p.P256DH, p.Auth, p.CreatedAt); err != nil {
			return err
		}
		// Keep the newest max: the oldest are the likeliest to be dead.
		_, err := tx.Exec(ctx, `DELETE FROM push_subscriptions WHERE user_id = $1 AND id NOT IN
			(SELECT id FROM push_subscriptions WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2)`, p.UserID, max)
		return err
	})
	if err != nil {
		return store.PushSubscription{}, s.wrap(err, "add push subscription of user %d", p.UserID)
	}
	return p, nil
}

// ListPushSubscriptions implements store.Store.
func (s *Store) ListPushSubscriptions(ctx context.Context, userID int64) ([]store.PushSubscription, error) {
	out, err := collect(ctx, s, s.pool, func(row pgx.Row) (store.PushSubscription, error) {
		var p store.PushSubscription
		err := row.Scan(&p.ID, &p.UserID, &p.Endpoint, &p.P256DH, &p.Auth, &p.CreatedAt)
		p.CreatedAt = p.CreatedAt.UTC()
		return p, err
	}, `SELECT id, user_id, endpoint, p256dh, auth, created_at FROM push_subscriptions WHERE user_id = $1 ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, s.wrap(err, "list push subscriptions of user %d", userID)
	}
	return out, nil
}

// DeletePushSubscription implements store.Store.
func (s *Store) DeletePushSubscription(ctx context.Context, userID int64, id string) error {
	if err := s.execOne(ctx, `DELETE FROM push_subscriptions WHERE id = $1 AND user_id = $2`, id, userID); err != nil {
		return s.wrap(err, "delete push subscription %s of user %d", id, userID)
	}
	return nil
}
