package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"math"
	"strings"

	"github.com/sori-dev/sori/internal/store"
)

// querier is what the read helpers need from *sql.DB and *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const eventCols = `room_id, seq, kind, user_id, body, reply_to, target, emoji, created_at, client_id, thread, mentions, mention_room`

func scanEvent(row interface{ Scan(...any) error }) (store.Event, error) {
	var e store.Event
	var mentions string
	err := row.Scan(&e.RoomID, (*seq)(&e.Seq), &e.Kind, &e.UserID, &e.Body, (*seq)(&e.ReplyTo), (*seq)(&e.Target), &e.Emoji, (*micros)(&e.CreatedAt),
		&e.ClientID, (*seq)(&e.Thread), &mentions, &e.MentionRoom)
	e.Mentions = parseIDs(mentions)
	return e, err
}

// EventsAfter implements store.Store.
func (s *Store) EventsAfter(ctx context.Context, roomID int64, after uint64, limit int) ([]store.Event, error) {
	evs, err := s.events(ctx, roomID, `SELECT `+eventCols+` FROM events WHERE room_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
		roomID, clampSeq(after), store.ClampLimit(limit))
	if err != nil {
		return nil, wrap(err, "events of room %d after %d", roomID, after)
	}
	return evs, nil
}

// LatestEvents implements store.Store.
func (s *Store) LatestEvents(ctx context.Context, roomID int64, limit int) ([]store.Event, error) {
	evs, err := s.events(ctx, roomID, `SELECT * FROM (SELECT `+eventCols+` FROM events WHERE room_id = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq`,
		roomID, store.ClampLimit(limit))
	if err != nil {
		return nil, wrap(err, "latest events of room %d", roomID)
	}
	return evs, nil
}

// events runs an event query; an empty result from a room that does not
// exist is ErrNotFound.
func (s *Store) events(ctx context.Context, roomID int64, query string, args ...any) ([]store.Event, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	evs, err := collect(rows, scanEvent)
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, s.roomExists(ctx, s.r, roomID)
	}
	return evs, nil
}

func (s *Store) roomExists(ctx context.Context, q querier, roomID int64) error {
	var one int
	return q.QueryRowContext(ctx, `SELECT 1 FROM rooms WHERE id = ?`, roomID).Scan(&one)
}

// RoomPosition implements store.Store. Seqs are assigned at commit, and
// the head is read from the log itself, so the position never points
// past what EventsAfter can return.
func (s *Store) RoomPosition(ctx context.Context, roomID int64) (store.Position, error) {
	var p store.Position
	err := s.r.QueryRowContext(ctx, `SELECT epoch, `+lastSeqOf("rooms.id")+` FROM rooms WHERE id = ?`, roomID).Scan(&p.Epoch, (*seq)(&p.Seq))
	if err != nil {
		return store.Position{}, wrap(err, "position of room %d", roomID)
	}
	return p, nil
}

const messageCols = `m.room_id, m.seq, m.author_id, m.body, m.reply_to, m.created_at, m.edited_at, m.deleted,
	m.client_id, m.thread, m.mentions, m.mention_room, m.thread_replies, m.thread_last_seq`

func scanMessage(row interface{ Scan(...any) error }) (store.Message, error) {
	var m store.Message
	var mentions string
	err := row.Scan(&m.RoomID, (*seq)(&m.Seq), &m.AuthorID, &m.Body, (*seq)(&m.ReplyTo), (*micros)(&m.CreatedAt), (*micros)(&m.EditedAt), &m.Deleted,
		&m.ClientID, (*seq)(&m.Thread), &mentions, &m.MentionRoom, &m.ThreadReplies, (*seq)(&m.ThreadLastSeq))
	m.Mentions = parseIDs(mentions)
	return m, err
}

// GetMessage implements store.Store.
func (s *Store) GetMessage(ctx context.Context, roomID int64, msgSeq uint64) (store.Message, error) {
	var m store.Message
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		var err error
		m, err = scanMessage(tx.QueryRowContext(ctx, `SELECT `+messageCols+` FROM messages m WHERE room_id = ? AND seq = ?`,
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
		return store.Message{}, wrap(err, "get message %d of room %d", msgSeq, roomID)
	}
	return m, nil
}

// MessagesBefore implements store.Store.
func (s *Store) MessagesBefore(ctx context.Context, roomID int64, before uint64, limit int) ([]store.Message, error) {
	b := clampSeq(before)
	if before == 0 {
		b = math.MaxInt64
	}
	ms, err := s.messages(ctx, roomID, `SELECT `+messageCols+` FROM messages m WHERE room_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`,
		roomID, b, store.ClampLimit(limit))
	if err != nil {
		return nil, wrap(err, "messages of room %d before %d", roomID, before)
	}
	return ms, nil
}

// MessagesAfter implements store.Store.
func (s *Store) MessagesAfter(ctx context.Context, roomID int64, after uint64, limit int) ([]store.Message, error) {
	ms, err := s.messages(ctx, roomID, `SELECT `+messageCols+` FROM messages m WHERE room_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
		roomID, clampSeq(after), store.ClampLimit(limit))
	if err != nil {
		return nil, wrap(err, "messages of room %d after %d", roomID, after)
	}
	return ms, nil
}

// messages reads a page of messages and their reactions from one snapshot.
func (s *Store) messages(ctx context.Context, roomID int64, query string, args ...any) ([]store.Message, error) {
	var ms []store.Message
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		if ms, err = collect(rows, scanMessage); err != nil {
			return err
		}
		if len(ms) == 0 {
			return s.roomExists(ctx, tx, roomID)
		}
		return loadReactions(ctx, tx, ms)
	})
	return ms, err
}

// SearchMessages implements store.Store.
func (s *Store) SearchMessages(ctx context.Context, roomIDs []int64, query string, limit int) ([]store.Message, error) {
	match := ftsQuery(query)
	if match == "" || len(roomIDs) == 0 {
		return nil, nil
	}
	rooms, _ := json.Marshal(roomIDs)
	var ms []store.Message
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+messageCols+`
			FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid
			WHERE messages_fts MATCH ? AND m.room_id IN (SELECT value FROM json_each(?)) AND m.deleted = 0
			ORDER BY m.created_at DESC, m.id DESC LIMIT ?`, match, string(rooms), store.ClampLimit(limit))
		if err != nil {
			return err
		}
		if ms, err = collect(rows, scanMessage); err != nil {
			return err
		}
		return loadReactions(ctx, tx, ms)
	})
	if err != nil {
		return nil, wrap(err, "search messages")
	}
	return ms, nil
}

// ftsQuery turns user text into an FTS5 query that cannot be a syntax error:
// every word becomes a quoted string (quotes doubled inside), so operators
// such as AND, NEAR, '-', '^' or ':' are plain text. A trailing '*' on a word
// is accepted and ignored: every word matches as a prefix. The words are
// ANDed.
func ftsQuery(q string) string {
	var b strings.Builder
	for _, w := range strings.Fields(q) {
		w = strings.ReplaceAll(w, "*", "")
		if w == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('"')
		b.WriteString(strings.ReplaceAll(w, `"`, `""`))
		b.WriteByte('"')
		// Every word is a prefix: people type the start of what they
		// remember ("welc" for "welcome").
		b.WriteByte('*')
	}
	return b.String()
}

// loadReactions fills in the reactions of ms, one query per room.
func loadReactions(ctx context.Context, q querier, ms []store.Message) error {
	type key struct {
		room int64
		seq  uint64
	}
	index := make(map[key]int, len(ms))
	byRoom := make(map[int64][]uint64)
	for i, m := range ms {
		index[key{m.RoomID, m.Seq}] = i
		byRoom[m.RoomID] = append(byRoom[m.RoomID], m.Seq)
	}
	for room, seqs := range byRoom {
		list, _ := json.Marshal(seqs)
		rows, err := q.QueryContext(ctx, `SELECT seq, emoji, user_id FROM reactions
			WHERE room_id = ? AND seq IN (SELECT value FROM json_each(?)) ORDER BY seq, emoji, user_id`, room, string(list))
		if err != nil {
			return err
		}
		for rows.Next() {
			var q seq
			var emoji string
			var user int64
			if err := rows.Scan(&q, &emoji, &user); err != nil {
				rows.Close()
				return err
			}
			m := &ms[index[key{room, uint64(q)}]]
			if n := len(m.Reactions); n > 0 && m.Reactions[n-1].Emoji == emoji {
				m.Reactions[n-1].UserIDs = append(m.Reactions[n-1].UserIDs, user)
			} else {
				m.Reactions = append(m.Reactions, store.Reaction{Emoji: emoji, UserIDs: []int64{user}})
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// readTx runs fn in a read transaction on the read pool, so that a message
// page and its reactions come from one snapshot.
func (s *Store) readTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(tx)
}
