package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/sori-dev/sori/internal/store"
)

// Reads and settings of threads, pins, mentions and notification levels
// (issue 14).

// unreadMentions is SQL for the unread mention count of member m in room
// r: messages after the read receipt that name m, plus @room messages by
// others, live ones only.
const unreadMentions = `(SELECT count(*) FROM mentions x JOIN messages y ON y.room_id = x.room_id AND y.seq = x.seq
				WHERE x.user_id = m.user_id AND x.room_id = r.id AND x.seq > m.last_read_seq AND y.deleted = 0)
			+ (SELECT count(*) FROM messages y WHERE y.room_id = r.id AND y.mention_room = 1 AND y.seq > m.last_read_seq
				AND y.author_id != m.user_id AND y.deleted = 0
				AND NOT EXISTS (SELECT 1 FROM mentions x WHERE x.user_id = m.user_id AND x.room_id = y.room_id AND x.seq = y.seq))`

// ThreadMessages implements store.Store.
func (s *Store) ThreadMessages(ctx context.Context, roomID int64, root, after uint64, limit int) ([]store.Message, error) {
	ms, err := s.messages(ctx, roomID, `SELECT `+messageCols+` FROM messages m WHERE room_id = ? AND thread = ? AND seq > ? ORDER BY seq LIMIT ?`,
		roomID, clampSeq(root), clampSeq(after), store.ClampLimit(limit))
	if err != nil {
		return nil, wrap(err, "thread %d of room %d", root, roomID)
	}
	return ms, nil
}

// ListPins implements store.Store.
func (s *Store) ListPins(ctx context.Context, roomID int64) ([]store.Pin, error) {
	var out []store.Pin
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+messageCols+`, p.user_id, p.created_at
			FROM pins p JOIN messages m ON m.room_id = p.room_id AND m.seq = p.seq
			WHERE p.room_id = ? ORDER BY p.created_at DESC, p.seq DESC LIMIT ?`, roomID, store.MaxLimit)
		if err != nil {
			return err
		}
		var ms []store.Message
		out, err = collect(rows, func(row interface{ Scan(...any) error }) (store.Pin, error) {
			var p store.Pin
			var mentions string
			err := row.Scan(&p.RoomID, (*seq)(&p.Seq), &p.AuthorID, &p.Body, (*seq)(&p.ReplyTo), (*micros)(&p.CreatedAt), (*micros)(&p.EditedAt), &p.Deleted,
				&p.ClientID, (*seq)(&p.Thread), &mentions, &p.MentionRoom, &p.ThreadReplies, (*seq)(&p.ThreadLastSeq), &p.PinnedBy, (*micros)(&p.PinnedAt))
			p.Mentions = parseIDs(mentions)
			return p, err
		})
		if err != nil {
			return err
		}
		if len(out) == 0 {
			return s.roomExists(ctx, tx, roomID)
		}
		for _, p := range out {
			ms = append(ms, p.Message)
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
		return nil, wrap(err, "pins of room %d", roomID)
	}
	return out, nil
}

// SetNotify implements store.Store.
func (s *Store) SetNotify(ctx context.Context, roomID, userID int64, level store.NotifyLevel) error {
	if !level.Valid() {
		return fmt.Errorf("store: notify level %q: %w", level, store.ErrInvalid)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE members SET notify = ? WHERE room_id = ? AND user_id = ?`, string(level), roomID, userID)
	if err = mustAffect(res, err); err != nil {
		return wrap(err, "set notify of user %d in room %d", userID, roomID)
	}
	return nil
}
