package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sori-dev/sori/internal/store"
)

// Reads and settings of threads, pins, mentions and notification levels
// (issue 14).

// unreadMentions is SQL for the unread mention count of member m in room
// r: messages after the read receipt that name m, plus @room messages by
// others, live ones only.
const unreadMentions = `(SELECT count(*) FROM mentions x JOIN messages y ON y.room_id = x.room_id AND y.seq = x.seq
				WHERE x.user_id = m.user_id AND x.room_id = r.id AND x.seq > m.last_read_seq AND NOT y.deleted)
			+ (SELECT count(*) FROM messages y WHERE y.room_id = r.id AND y.mention_room AND y.seq > m.last_read_seq
				AND y.author_id <> m.user_id AND NOT y.deleted
				AND NOT EXISTS (SELECT 1 FROM mentions x WHERE x.user_id = m.user_id AND x.room_id = y.room_id AND x.seq = y.seq))`

// ThreadMessages implements store.Store.
func (s *Store) ThreadMessages(ctx context.Context, roomID int64, root, after uint64, limit int) ([]store.Message, error) {
	ms, err := s.messages(ctx, roomID, `SELECT `+messageCols+` FROM messages m WHERE room_id = $1 AND thread = $2 AND seq > $3 ORDER BY seq LIMIT $4`,
		roomID, clampSeq(root), clampSeq(after), store.ClampLimit(limit))
	if err != nil {
		return nil, s.wrap(err, "thread %d of room %d", root, roomID)
	}
	return ms, nil
}

// ListPins implements store.Store.
func (s *Store) ListPins(ctx context.Context, roomID int64) ([]store.Pin, error) {
	var out []store.Pin
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = collect(ctx, s, tx, func(row pgx.Row) (store.Pin, error) {
			var p store.Pin
			var edited pgtype.Timestamptz
			err := row.Scan(&p.RoomID, (*seqCol)(&p.Seq), &p.AuthorID, &p.Body, (*seqCol)(&p.ReplyTo), &p.CreatedAt, &edited, &p.Deleted,
				&p.ClientID, (*seqCol)(&p.Thread), &p.Mentions, &p.MentionRoom, &p.ThreadReplies, (*seqCol)(&p.ThreadLastSeq), &p.PinnedBy, &p.PinnedAt)
			p.CreatedAt, p.EditedAt, p.PinnedAt = p.CreatedAt.UTC(), fromTstz(edited), p.PinnedAt.UTC()
			if len(p.Mentions) == 0 {
				p.Mentions = nil
			}
			return p, err
		}, `SELECT `+messageCols+`, p.user_id, p.created_at
			FROM pins p JOIN messages m ON m.room_id = p.room_id AND m.seq = p.seq
			WHERE p.room_id = $1 ORDER BY p.created_at DESC, p.seq DESC LIMIT $2`, roomID, store.MaxLimit)
		if err != nil {
			return err
		}
		if len(out) == 0 {
			return roomExists(ctx, tx, roomID)
		}
		ms := make([]store.Message, len(out))
		for i, p := range out {
			ms[i] = p.Message
		}
		if err := loadReactions(ctx, tx, ms); err != nil {
			return err
		}
		for i := range out {
			out[i].Message = ms[i]
		}
		return nil
	})
	if err != nil {
		return nil, s.wrap(err, "pins of room %d", roomID)
	}
	return out, nil
}

// SetNotify implements store.Store.
func (s *Store) SetNotify(ctx context.Context, roomID, userID int64, level store.NotifyLevel) error {
	if !level.Valid() {
		return fmt.Errorf("store: notify level %q: %w", level, store.ErrInvalid)
	}
	if err := s.execOne(ctx, `UPDATE members SET notify = $1 WHERE room_id = $2 AND user_id = $3`, string(level), roomID, userID); err != nil {
		return s.wrap(err, "set notify of user %d in room %d", userID, roomID)
	}
	return nil
}
