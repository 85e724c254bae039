package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/sori-dev/sori/internal/store"
)

// Group commit.
//
// AppendEvent hands its event to the writer goroutine over an unbuffered
// channel and waits for the result. The writer takes one request, then every
// request already waiting (up to Options.MaxBatch), applies them in one
// transaction and wakes each caller after COMMIT returns. While a batch
// commits, new callers queue up on the channel and form the next batch, so
// the batch size grows with the load by itself and no timer is needed.
//
// Seqs are assigned by the writer, in the order events are applied, from a
// per-room head it caches (rooms are never deleted and only this writer
// appends). Each event runs inside a SAVEPOINT: an event the store rejects
// (ErrNotFound, ErrConflict) is rolled back alone and takes no seq, while
// the rest of the batch commits. Any other error fails the whole batch: it is
// rolled back, every caller gets the error, the cached heads are untouched and
// so no seq is used.

// appendReq is one AppendEvent call waiting for the writer.
type appendReq struct {
	ctx  context.Context
	ev   store.Event
	done chan appendResult // buffered: the writer never blocks on a caller
}

type appendResult struct {
	ev  store.Event
	err error
}

// roomHead is the newest event of a room as the writer knows it.
type roomHead struct {
	seq uint64
	at  int64 // unix micros of that event
}

// AppendEvent implements store.Store.
func (s *Store) AppendEvent(ctx context.Context, roomID int64, ev store.Event) (store.Event, error) {
	ev, err := normalizeEvent(roomID, ev)
	if err != nil {
		return store.Event{}, err
	}
	req := &appendReq{ctx: ctx, ev: ev, done: make(chan appendResult, 1)}
	select {
	case s.appends <- req:
	case <-s.closing:
		return store.Event{}, fmt.Errorf("store: append %s to room %d: %w", ev.Kind, roomID, store.ErrClosed)
	case <-ctx.Done():
		return store.Event{}, fmt.Errorf("store: append %s to room %d: %w", ev.Kind, roomID, ctx.Err())
	}
	select {
	case res := <-req.done:
		return res.ev, res.err
	case <-ctx.Done():
		return store.Event{}, fmt.Errorf("store: append %s to room %d: %w", ev.Kind, roomID, ctx.Err())
	}
}

// normalizeEvent checks that ev carries what its kind needs and clears what
// it does not, so the log holds no stray fields.
func normalizeEvent(roomID int64, ev store.Event) (store.Event, error) {
	ev.RoomID, ev.Seq, ev.CreatedAt = roomID, 0, stamp(ev.CreatedAt)
	bad := func(why string) (store.Event, error) {
		return store.Event{}, fmt.Errorf("store: append %s to room %d: %s: %w", ev.Kind, roomID, why, store.ErrInvalid)
	}
	switch ev.Kind {
	case store.EventMessage:
		ev.Target, ev.Emoji = 0, ""
	case store.EventEdit:
		ev.ReplyTo, ev.Emoji = 0, ""
	case store.EventDelete:
		ev.Body, ev.ReplyTo, ev.Emoji = "", 0, ""
	case store.EventReactionAdd, store.EventReactionRemove:
		ev.Body, ev.ReplyTo = "", 0
		if ev.Emoji == "" {
			return bad("no emoji")
		}
	default:
		return bad("unknown kind")
	}
	if ev.Kind != store.EventMessage && ev.Target == 0 {
		return bad("no target message")
	}
	return ev, nil
}

func (s *Store) writeLoop() {
	defer s.writerWG.Done()
	heads := make(map[int64]roomHead)
	batch := make([]*appendReq, 0, s.opts.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case req := <-s.appends:
			batch = append(batch, req)
		case <-s.closing:
			// Callers that won the race against Close are committed; later
			// ones see closing and fail with ErrClosed.
			for {
				batch = s.collect(batch[:0])
				if len(batch) == 0 {
					return
				}
				s.commitBatch(batch, heads)
			}
		}
		batch = s.collect(batch)
		s.commitBatch(batch, heads)
	}
}

// collect adds every request already waiting, up to MaxBatch, without
// blocking.
func (s *Store) collect(batch []*appendReq) []*appendReq {
	for len(batch) < s.opts.MaxBatch {
		select {
		case req := <-s.appends:
			batch = append(batch, req)
		default:
			return batch
		}
	}
	return batch
}

// commitBatch applies batch in one transaction and answers every caller.
func (s *Store) commitBatch(batch []*appendReq, heads map[int64]roomHead) {
	results := make([]appendResult, len(batch))
	pending := make(map[int64]roomHead)
	err := s.applyBatch(batch, heads, pending, results)
	if err != nil {
		err = fmt.Errorf("store: commit batch of %d events: %w", len(batch), err)
		for i := range results {
			if results[i].err == nil || !isLogical(results[i].err) {
				results[i] = appendResult{err: err}
			}
		}
	} else {
		for id, h := range pending {
			heads[id] = h
		}
	}
	for i, req := range batch {
		req.done <- results[i]
	}
}

// applyBatch runs the batch's transaction. It fills results for each request
// and pending with the new heads of the rooms it touched; it returns an
// error only when the transaction as a whole failed.
func (s *Store) applyBatch(batch []*appendReq, heads, pending map[int64]roomHead, results []appendResult) (err error) {
	ctx := context.Background() // the batch belongs to no single caller
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	a := &applier{ctx: ctx, tx: tx, s: s, heads: heads, pending: pending}
	for i, req := range batch {
		if err := req.ctx.Err(); err != nil {
			// The caller has gone; do not commit what it no longer waits for.
			results[i].err = err
			continue
		}
		ev, err := a.applyOne(req.ev)
		if err != nil && !isLogical(err) {
			return err
		}
		if err != nil {
			err = fmt.Errorf("store: append %s to room %d: %w", req.ev.Kind, req.ev.RoomID, err)
		}
		results[i] = appendResult{ev: ev, err: err}
	}
	for id, h := range pending {
		if _, err := a.stmt(stmtSetHead).ExecContext(ctx, int64(h.seq), h.at, id); err != nil {
			return err
		}
	}
	if s.failNextBatch != nil {
		if err := s.failNextBatch(); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// applier applies events inside one batch transaction.
type applier struct {
	ctx     context.Context
	tx      *sql.Tx
	s       *Store
	heads   map[int64]roomHead // committed heads, read only here
	pending map[int64]roomHead // heads as of this transaction
	stmts   [numStmts]*sql.Stmt
}

// stmt returns the batch transaction's handle of a prepared statement.
func (a *applier) stmt(id int) *sql.Stmt {
	if a.stmts[id] == nil {
		a.stmts[id] = a.tx.StmtContext(a.ctx, a.s.prepared[id])
	}
	return a.stmts[id]
}

func (a *applier) head(roomID int64) (roomHead, error) {
	if h, ok := a.pending[roomID]; ok {
		return h, nil
	}
	if h, ok := a.heads[roomID]; ok {
		return h, nil
	}
	var h roomHead
	var last int64
	if err := a.stmt(stmtGetHead).QueryRowContext(a.ctx, roomID).Scan(&last, &h.at); err != nil {
		return roomHead{}, classify(err)
	}
	h.seq = uint64(last)
	return h, nil
}

// applyOne applies ev within a savepoint, so a rejected event leaves no trace.
func (a *applier) applyOne(ev store.Event) (store.Event, error) {
	h, err := a.head(ev.RoomID)
	if err != nil {
		return store.Event{}, err
	}
	ev.Seq = h.seq + 1
	if _, err := a.tx.ExecContext(a.ctx, "SAVEPOINT ev"); err != nil {
		return store.Event{}, err
	}
	if err := a.mutate(ev); err != nil {
		if _, rerr := a.tx.ExecContext(a.ctx, "ROLLBACK TO ev; RELEASE ev"); rerr != nil {
			return store.Event{}, errors.Join(err, rerr)
		}
		return store.Event{}, err
	}
	if _, err := a.tx.ExecContext(a.ctx, "RELEASE ev"); err != nil {
		return store.Event{}, err
	}
	a.pending[ev.RoomID] = roomHead{seq: ev.Seq, at: toMicros(ev.CreatedAt)}
	return ev, nil
}

// mutate writes ev and its effect on the messages it concerns. Logical
// failures come back as store sentinels.
func (a *applier) mutate(ev store.Event) error {
	room, q, at := ev.RoomID, int64(ev.Seq), toMicros(ev.CreatedAt)
	switch ev.Kind {
	case store.EventMessage:
		if ev.ReplyTo != 0 {
			if _, err := a.target(room, ev.ReplyTo, true); err != nil {
				return err
			}
		}
		if _, err := a.stmt(stmtInsertMessage).ExecContext(a.ctx, room, q, ev.UserID, ev.Body, int64(ev.ReplyTo), at); err != nil {
			return classify(err)
		}
	case store.EventEdit:
		if _, err := a.target(room, ev.Target, false); err != nil {
			return err
		}
		if _, err := a.stmt(stmtEditMessage).ExecContext(a.ctx, ev.Body, at, room, int64(ev.Target)); err != nil {
			return classify(err)
		}
	case store.EventDelete:
		if _, err := a.target(room, ev.Target, false); err != nil {
			return err
		}
		for _, id := range []int{stmtDeleteMessage, stmtDeleteReactions, stmtScrubEvents} {
			if _, err := a.stmt(id).ExecContext(a.ctx, room, int64(ev.Target)); err != nil {
				return classify(err)
			}
		}
	case store.EventReactionAdd:
		if _, err := a.target(room, ev.Target, false); err != nil {
			return err
		}
		if _, err := a.stmt(stmtAddReaction).ExecContext(a.ctx, room, int64(ev.Target), ev.Emoji, ev.UserID, at); err != nil {
			return classify(err)
		}
	case store.EventReactionRemove:
		if _, err := a.target(room, ev.Target, false); err != nil {
			return err
		}
		res, err := a.stmt(stmtRemoveReaction).ExecContext(a.ctx, room, int64(ev.Target), ev.Emoji, ev.UserID)
		if err = mustAffect(res, err); err != nil {
			return classify(err)
		}
	}
	_, err := a.stmt(stmtInsertEvent).ExecContext(a.ctx, room, q, string(ev.Kind), ev.UserID, ev.Body,
		int64(ev.ReplyTo), int64(ev.Target), ev.Emoji, at)
	return classify(err)
}

// target checks that message seq exists in room and, unless deletedOK, is
// not deleted.
func (a *applier) target(room int64, msg uint64, deletedOK bool) (deleted bool, err error) {
	if err := a.stmt(stmtGetMessageState).QueryRowContext(a.ctx, room, int64(msg)).Scan(&deleted); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return false, fmt.Errorf("message %d: %w", msg, store.ErrNotFound)
		}
		return false, err
	}
	if deleted && !deletedOK {
		return true, fmt.Errorf("message %d is deleted: %w", msg, store.ErrConflict)
	}
	return deleted, nil
}

// The writer's prepared statements.
const (
	stmtGetHead = iota
	stmtSetHead
	stmtInsertEvent
	stmtInsertMessage
	stmtGetMessageState
	stmtEditMessage
	stmtDeleteMessage
	stmtDeleteReactions
	stmtScrubEvents
	stmtAddReaction
	stmtRemoveReaction
	numStmts
)

var writerSQL = [numStmts]string{
	stmtGetHead:         `SELECT last_seq, last_event_at FROM rooms WHERE id = ?`,
	stmtSetHead:         `UPDATE rooms SET last_seq = ?, last_event_at = ? WHERE id = ?`,
	stmtInsertEvent:     `INSERT INTO events (room_id, seq, kind, user_id, body, reply_to, target, emoji, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
	stmtInsertMessage:   `INSERT INTO messages (room_id, seq, author_id, body, reply_to, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
	stmtGetMessageState: `SELECT deleted FROM messages WHERE room_id = ? AND seq = ?`,
	stmtEditMessage:     `UPDATE messages SET body = ?, edited_at = ? WHERE room_id = ? AND seq = ?`,
	stmtDeleteMessage:   `UPDATE messages SET body = '', deleted = 1 WHERE room_id = ? AND seq = ?`,
	stmtDeleteReactions: `DELETE FROM reactions WHERE room_id = ? AND seq = ?`,
	// A delete scrubs the text from the log too: the message event and its
	// edits keep their place (seqs stay gap-free) but lose their body.
	stmtScrubEvents:    `UPDATE events SET body = '' WHERE room_id = ?1 AND (seq = ?2 OR (kind = 'edit' AND target = ?2))`,
	stmtAddReaction:    `INSERT INTO reactions (room_id, seq, emoji, user_id, created_at) VALUES (?, ?, ?, ?, ?)`,
	stmtRemoveReaction: `DELETE FROM reactions WHERE room_id = ? AND seq = ? AND emoji = ? AND user_id = ?`,
}

func prepareWriter(ctx context.Context, db *sql.DB) ([numStmts]*sql.Stmt, error) {
	var out [numStmts]*sql.Stmt
	for i, q := range writerSQL {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			for _, p := range out[:i] {
				p.Close()
			}
			return out, fmt.Errorf("prepare %q: %w", q, err)
		}
		out[i] = st
	}
	return out, nil
}
