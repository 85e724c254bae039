package postgres

import (
	"context"
	"math"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sori-dev/sori/internal/store"
)

const eventCols = `room_id, seq, kind, user_id, body, reply_to, target, emoji, created_at, client_id, thread, mentions, mention_room`

func scanEvent(row pgx.Row) (store.Event, error) {
	var e store.Event
	err := row.Scan(&e.RoomID, (*seqCol)(&e.Seq), &e.Kind, &e.UserID, &e.Body, (*seqCol)(&e.ReplyTo), (*seqCol)(&e.Target), &e.Emoji, &e.CreatedAt,
		&e.ClientID, (*seqCol)(&e.Thread), &e.Mentions, &e.MentionRoom)
	e.CreatedAt = e.CreatedAt.UTC()
	if len(e.Mentions) == 0 {
		e.Mentions = nil
	}
	return e, err
}

// EventsAfter implements store.Store.
func (s *Store) EventsAfter(ctx context.Context, roomID int64, after uint64, limit int) ([]store.Event, error) {
	evs, err := s.events(ctx, roomID, `SELECT `+eventCols+` FROM events WHERE room_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
		roomID, clampSeq(after), store.ClampLimit(limit))
	if err != nil {
		return nil, s.wrap(err, "events of room %d after %d", roomID, after)
	}
	return evs, nil
}

// LatestEvents implements store.Store.
func (s *Store) LatestEvents(ctx context.Context, roomID int64, limit int) ([]store.Event, error) {
	evs, err := s.events(ctx, roomID, `SELECT * FROM (SELECT `+eventCols+` FROM events WHERE room_id = $1 ORDER BY seq DESC LIMIT $2) e ORDER BY seq`,
		roomID, store.ClampLimit(limit))
	if err != nil {
		return nil, s.wrap(err, "latest events of room %d", roomID)
	}
	return evs, nil
}

// events runs an event query; an empty result from a room that does not
// exist is ErrNotFound.
func (s *Store) events(ctx context.Context, roomID int64, query string, args ...any) ([]store.Event, error) {
	evs, err := collect(ctx, s, s.pool, scanEvent, query, args...)
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, roomExists(ctx, s.pool, roomID)
	}
	return evs, nil
}

func roomExists(ctx context.Context, q querier, roomID int64) error {
	var one int
	return q.QueryRow(ctx, `SELECT 1 FROM rooms WHERE id = $1`, roomID).Scan(&one)
}

// RoomPosition implements store.Store. last_seq changes only in the
// transaction that writes the events up to it, so the position never points
// past what EventsAfter can return.
func (s *Store) RoomPosition(ctx context.Context, roomID int64) (store.Position, error) {
	var p store.Position
	err := s.queryRow(ctx, `SELECT epoch, last_seq FROM rooms WHERE id = $1`, roomID).Scan(&p.Epoch, (*seqCol)(&p.Seq))
	if err != nil {
		return store.Position{}, s.wrap(err, "position of room %d", roomID)
	}
	return p, nil
}

const messageCols = `m.room_id, m.seq, m.author_id, m.body, m.reply_to, m.created_at, m.edited_at, m.deleted,
	m.client_id, m.thread, m.mentions, m.mention_room, m.thread_replies, m.thread_last_seq`

func scanMessage(row pgx.Row) (store.Message, error) {
	var m store.Message
	var edited pgtype.Timestamptz
	err := row.Scan(&m.RoomID, (*seqCol)(&m.Seq), &m.AuthorID, &m.Body, (*seqCol)(&m.ReplyTo), &m.CreatedAt, &edited, &m.Deleted,
		&m.ClientID, (*seqCol)(&m.Thread), &m.Mentions, &m.MentionRoom, &m.ThreadReplies, (*seqCol)(&m.ThreadLastSeq))
	m.CreatedAt, m.EditedAt = m.CreatedAt.UTC(), fromTstz(edited)
	if len(m.Mentions) == 0 {
		m.Mentions = nil
	}
	return m, err
}

// GetMessage implements store.Store.
func (s *Store) GetMessage(ctx context.Context, roomID int64, msgSeq uint64) (store.Message, error) {
	var m store.Message
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		var err error
		m, err = scanMessage(tx.QueryRow(ctx, `SELECT `+messageCols+` FROM messages m WHERE room_id = $1 AND seq = $2`,
			roomID, clampSeq(msgSeq)))
		if err != nil {
			return err
		}
		ms := []store.Message{m}
		err = loadReactions(ctx, tx, ms)
		m = ms[0]
		return err
	})
	if err != nil {
		return store.Message{}, s.wrap(err, "get message %d of room %d", msgSeq, roomID)
	}
	return m, nil
}

// MessagesBefore implements store.Store.
func (s *Store) MessagesBefore(ctx context.Context, roomID int64, before uint64, limit int) ([]store.Message, error) {
	b := clampSeq(before)
	if before == 0 {
		b = math.MaxInt64
	}
	ms, err := s.messages(ctx, roomID, `SELECT `+messageCols+` FROM messages m WHERE room_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`,
		roomID, b, store.ClampLimit(limit))
	if err != nil {
		return nil, s.wrap(err, "messages of room %d before %d", roomID, before)
	}
	return ms, nil
}

// MessagesAfter implements store.Store.
func (s *Store) MessagesAfter(ctx context.Context, roomID int64, after uint64, limit int) ([]store.Message, error) {
	ms, err := s.messages(ctx, roomID, `SELECT `+messageCols+` FROM messages m WHERE room_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
		roomID, clampSeq(after), store.ClampLimit(limit))
	if err != nil {
		return nil, s.wrap(err, "messages of room %d after %d", roomID, after)
	}
	return ms, nil
}

// messages reads a page of messages and their reactions from one snapshot.
func (s *Store) messages(ctx context.Context, roomID int64, query string, args ...any) ([]store.Message, error) {
	var ms []store.Message
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		var err error
		if ms, err = collect(ctx, s, tx, scanMessage, query, args...); err != nil {
			return err
		}
		if len(ms) == 0 {
			return roomExists(ctx, tx, roomID)
		}
		return loadReactions(ctx, tx, ms)
	})
	return ms, err
}

// SearchMessages implements store.Store. See search.go for how user text
// becomes a tsquery; the GIN index on messages.tsv answers the match.
func (s *Store) SearchMessages(ctx context.Context, roomIDs []int64, query string, limit int) ([]store.Message, error) {
	match := tsQuery(query)
	if match == "" || len(roomIDs) == 0 {
		return nil, nil
	}
	var ms []store.Message
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		var err error
		ms, err = collect(ctx, s, tx, scanMessage, `SELECT `+messageCols+` FROM messages m
			WHERE m.tsv @@ $1::tsquery AND m.room_id = ANY($2) AND NOT m.deleted
			ORDER BY m.created_at DESC, m.room_id DESC, m.seq DESC LIMIT $3`, match, roomIDs, store.ClampLimit(limit))
		if err != nil {
			return err
		}
		return loadReactions(ctx, tx, ms)
	})
	if err != nil {
		return nil, s.wrap(err, "search messages")
	}
	return ms, nil
}

// loadReactions fills in the reactions of ms in one query.
func loadReactions(ctx context.Context, q querier, ms []store.Message) error {
	if len(ms) == 0 {
		return nil
	}
	type key struct {
		room int64
		seq  uint64
	}
	index := make(map[key]int, len(ms))
	rooms, seqs := make([]int64, len(ms)), make([]int64, len(ms))
	for i, m := range ms {
		index[key{m.RoomID, m.Seq}] = i
		rooms[i], seqs[i] = m.RoomID, int64(m.Seq)
	}
	rows, err := q.Query(ctx, `SELECT room_id, seq, emoji, user_id FROM reactions
		WHERE (room_id, seq) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[]))
		ORDER BY room_id, seq, emoji COLLATE "C", user_id`, rooms, seqs)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var room int64
		var q seqCol
		var emoji string
		var user int64
		if err := rows.Scan(&room, &q, &emoji, &user); err != nil {
			return err
		}
		m := &ms[index[key{room, uint64(q)}]]
		if n := len(m.Reactions); n > 0 && m.Reactions[n-1].Emoji == emoji {
			m.Reactions[n-1].UserIDs = append(m.Reactions[n-1].UserIDs, user)
		} else {
			m.Reactions = append(m.Reactions, store.Reaction{Emoji: emoji, UserIDs: []int64{user}})
		}
	}
	return rows.Err()
}

// readTx runs fn in a read-only repeatable-read transaction, so that a
// message page and its reactions come from one snapshot.
func (s *Store) readTx(ctx context.Context, fn func(pgx.Tx) error) error {
	if s.isClosed() {
		return store.ErrClosed
	}
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}
