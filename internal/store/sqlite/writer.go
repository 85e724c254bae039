package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

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
// appends). Each event is checked with reads before it writes anything: an
// event the store rejects (ErrNotFound, ErrConflict) touches nothing and
// takes no seq, while the rest of the batch commits. Any other error fails
// the whole batch: it is rolled back, every caller gets the error, the cached
// heads are untouched and so no seq is used.

// appendReq is one AppendEvent call waiting for the writer.
type appendReq struct {
	ctx context.Context
	ev  store.Event
}

type appendResult struct {
	ev  store.Event
	err error
}

// roomHead is the newest event of a room as the writer knows it.
type roomHead struct {
	seq uint64
}

// AppendEvent implements store.Store.
func (s *Store) AppendEvent(ctx context.Context, roomID int64, ev store.Event) (store.Event, error) {
	ev, err := store.NormalizeEvent(roomID, ev)
	if err != nil {
		return store.Event{}, err
	}
	res, err := s.appends.Submit(ctx, &appendReq{ctx: ctx, ev: ev})
	if err != nil { // store.ErrClosed, or the caller's context ended
		return store.Event{}, fmt.Errorf("store: append %s to room %d: %w", ev.Kind, roomID, err)
	}
	return res.ev, res.err
}

func (s *Store) writeLoop() {
	defer s.writerWG.Done()
	ckpt := s.startCheckpointer()
	defer ckpt.stop() // before Close's final checkpoint
	heads := make(map[int64]roomHead)
	s.appends.Run(func(batch []*appendReq) []appendResult {
		results := s.commitBatch(batch, heads)
		ckpt.kick()
		return results
	})
}

// Checkpoints.
//
// In WAL mode a commit appends pages to the WAL, and a checkpoint copies
// them back into the database file, fsyncing the WAL before and the file
// after. SQLite's automatic checkpoint runs inside the COMMIT that makes the
// WAL cross wal_autocheckpoint pages, that is on the writer goroutine, where
// its two fsyncs stall every caller of that batch and of the batches queued
// behind it. The checkpointer goroutine runs PASSIVE checkpoints on a read
// connection instead, after the writer has committed, at most once per
// checkpointInterval. PASSIVE takes no lock the writer or readers wait for.
//
// The writer's automatic checkpoint stays as the backstop: under a load
// that never pauses, the WAL is reset (written again from its start) only
// once a checkpoint has copied all of it, and the writer's own checkpoint
// does that, with only the frames written since the last background one
// left to copy. Durability is unchanged: it rests on the WAL, which a
// checkpoint only copies.

// checkpointInterval is the least time between background checkpoints: a
// hot page rewritten by many batches is copied once per checkpoint, so more
// often would copy the same pages again for nothing.
const checkpointInterval = 100 * time.Millisecond

// backgroundCheckpoints turns the checkpointer off when false (for
// benchmarks that compare).
var backgroundCheckpoints = true

type checkpointer struct {
	s     *Store
	kicks chan struct{} // buffered 1: the writer never blocks on it
	quit  chan struct{}
	done  chan struct{}
}

func (s *Store) startCheckpointer() *checkpointer {
	c := &checkpointer{s: s, kicks: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	if !backgroundCheckpoints {
		close(c.done)
		return c
	}
	go c.run()
	return c
}

// kick tells the checkpointer that the WAL has grown.
func (c *checkpointer) kick() {
	select {
	case c.kicks <- struct{}{}:
	default:
	}
}

func (c *checkpointer) stop() {
	close(c.quit)
	<-c.done
}

func (c *checkpointer) run() {
	defer close(c.done)
	pause := time.NewTimer(checkpointInterval)
	defer pause.Stop()
	for {
		select {
		case <-c.kicks:
		case <-c.quit:
			return
		}
		// A failed checkpoint is harmless: the pages stay in the WAL and
		// the next one, or the writer's, copies them.
		var busy, logFrames, copied int64
		err := c.s.r.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logFrames, &copied)
		if err == nil && copied > 0 {
			c.s.checkpointedFrames.Add(copied)
		}
		pause.Reset(checkpointInterval)
		select {
		case <-pause.C:
		case <-c.quit:
			return
		}
	}
}

// commitBatch applies batch in one transaction and returns every caller's
// result.
func (s *Store) commitBatch(batch []*appendReq, heads map[int64]roomHead) []appendResult {
	results := make([]appendResult, len(batch))
	pending := make(map[int64]roomHead)
	err := s.applyBatch(batch, heads, pending, results)
	if err != nil {
		err = fmt.Errorf("store: commit batch of %d events: %w", len(batch), classify(err))
		for i := range results {
			if results[i].err == nil || !isLogical(results[i].err) {
				results[i] = appendResult{err: err}
			}
		}
	} else {
		s.batches.Add(1)
		s.batchedEvents.Add(int64(len(batch)))
		for id, h := range pending {
			heads[id] = h
		}
	}
	return results
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
	if len(a.fts) > 0 {
		ops, err := json.Marshal(a.fts)
		if err != nil {
			return err
		}
		if _, err := a.stmt(stmtIndex).ExecContext(ctx, string(ops)); err != nil {
			return err
		}
	}
	if s.failBatch != nil {
		if err := s.failBatch(len(batch)); err != nil {
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
	fts     []ftsOp // index changes, applied in order at the end of the batch

	// The message the last target call found.
	targetRow  int64
	targetBody string
}

// ftsOp is one change to messages_fts, as [command, rowid, body]: command
// "delete" removes the terms of body from rowid, null adds them.
type ftsOp [3]any

func ftsAdd(rowid int64, body string) ftsOp    { return ftsOp{nil, rowid, body} }
func ftsRemove(rowid int64, body string) ftsOp { return ftsOp{"delete", rowid, body} }

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
	var last sql.NullInt64
	if err := a.stmt(stmtGetHead).QueryRowContext(a.ctx, roomID).Scan(&last); err != nil {
		return roomHead{}, classify(err)
	}
	return roomHead{seq: uint64(last.Int64)}, nil
}

// applyOne checks ev against the current state, then writes it. All checks
// are reads done before the first write, so a rejected event leaves no trace
// in the transaction and needs no savepoint (savepoints cost 40% of the
// writer's time when measured). A write that fails after the checks passed
// is not the caller's fault and fails the batch.
func (a *applier) applyOne(ev store.Event) (store.Event, error) {
	h, err := a.head(ev.RoomID)
	if err != nil {
		return store.Event{}, err
	}
	if dup, ok, err := a.duplicate(ev); err != nil || ok {
		return dup, err
	}
	if err := a.check(ev); err != nil {
		return store.Event{}, err
	}
	ev.Seq = h.seq + 1
	if err := a.write(ev); err != nil {
		return store.Event{}, unexpected(err)
	}
	a.pending[ev.RoomID] = roomHead{seq: ev.Seq}
	return ev, nil
}

// unexpected keeps a constraint error raised after the checks from looking
// like a per-event outcome, so that it fails the batch.
func unexpected(err error) error {
	if err != nil && isLogical(err) {
		return fmt.Errorf("write after checks passed: %v", err)
	}
	return err
}

// check rejects an event that would break a reference or a rule, with a
// store sentinel.
func (a *applier) check(ev store.Event) error {
	if err := a.user(ev.UserID); err != nil {
		return err
	}
	switch ev.Kind {
	case store.EventMessage:
		if ev.ReplyTo != 0 {
			if err := a.target(ev.RoomID, ev.ReplyTo, true); err != nil {
				return err
			}
		}
		if ev.Thread != 0 {
			return a.target(ev.RoomID, ev.Thread, false)
		}
		return nil
	case store.EventPin, store.EventUnpin:
		return a.checkPin(ev)
	case store.EventReactionAdd, store.EventReactionRemove:
		if err := a.target(ev.RoomID, ev.Target, false); err != nil {
			return err
		}
		var one int
		err := a.stmt(stmtGetReaction).QueryRowContext(a.ctx, ev.RoomID, int64(ev.Target), ev.Emoji, ev.UserID).Scan(&one)
		switch {
		case err == nil && ev.Kind == store.EventReactionAdd:
			return fmt.Errorf("reaction %s of user %d: %w", ev.Emoji, ev.UserID, store.ErrConflict)
		case errors.Is(err, sql.ErrNoRows) && ev.Kind == store.EventReactionRemove:
			return fmt.Errorf("reaction %s of user %d: %w", ev.Emoji, ev.UserID, store.ErrNotFound)
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		return nil
	default: // edit, delete
		return a.target(ev.RoomID, ev.Target, false)
	}
}

// user checks that a user exists. Users are never deleted, so each is looked
// up once per writer.
func (a *applier) user(id int64) error {
	if _, ok := a.s.knownUsers[id]; ok {
		return nil
	}
	var one int
	err := a.stmt(stmtGetUser).QueryRowContext(a.ctx, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("user %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return err
	}
	a.s.knownUsers[id] = struct{}{}
	return nil
}

// write stores ev and its effect on the message it concerns.
func (a *applier) write(ev store.Event) error {
	room, q, at := ev.RoomID, int64(ev.Seq), toMicros(ev.CreatedAt)
	var err error
	switch ev.Kind {
	case store.EventMessage:
		var res sql.Result
		if res, err = a.stmt(stmtInsertMessage).ExecContext(a.ctx, room, q, ev.UserID, ev.Body, int64(ev.ReplyTo), at,
			ev.ClientID, int64(ev.Thread), formatIDs(ev.Mentions), ev.MentionRoom); err != nil {
			break
		}
		if err = a.writeMessageExtras(ev); err != nil {
			break
		}
		var rowid int64
		if rowid, err = res.LastInsertId(); err != nil {
			break
		}
		a.fts = append(a.fts, ftsAdd(rowid, ev.Body))
	case store.EventEdit:
		_, err = a.stmt(stmtEditMessage).ExecContext(a.ctx, ev.Body, at, room, int64(ev.Target))
		a.fts = append(a.fts, ftsRemove(a.targetRow, a.targetBody), ftsAdd(a.targetRow, ev.Body))
	case store.EventDelete:
		// The tombstone stays in messages with an empty body; the index
		// keeps an (empty) entry for it so that it matches its content table.
		a.fts = append(a.fts, ftsRemove(a.targetRow, a.targetBody), ftsAdd(a.targetRow, ""))
		for _, id := range []int{stmtDeleteMessage, stmtDeleteReactions, stmtScrubEvents, stmtDeletePin} {
			if _, err = a.stmt(id).ExecContext(a.ctx, room, int64(ev.Target)); err != nil {
				break
			}
		}
	case store.EventReactionAdd:
		_, err = a.stmt(stmtAddReaction).ExecContext(a.ctx, room, int64(ev.Target), ev.Emoji, ev.UserID, at)
	case store.EventReactionRemove:
		_, err = a.stmt(stmtRemoveReaction).ExecContext(a.ctx, room, int64(ev.Target), ev.Emoji, ev.UserID)
	case store.EventPin:
		_, err = a.stmt(stmtAddPin).ExecContext(a.ctx, room, int64(ev.Target), ev.UserID, at)
	case store.EventUnpin:
		_, err = a.stmt(stmtDeletePin).ExecContext(a.ctx, room, int64(ev.Target))
	}
	if err != nil {
		return classify(err)
	}
	_, err = a.stmt(stmtInsertEvent).ExecContext(a.ctx, room, q, string(ev.Kind), ev.UserID, ev.Body,
		int64(ev.ReplyTo), int64(ev.Target), ev.Emoji, at, ev.ClientID, int64(ev.Thread), formatIDs(ev.Mentions), ev.MentionRoom)
	return classify(err)
}

// target checks that message seq exists in room and, unless deletedOK, is
// not deleted. It remembers the message's rowid and body for the index.
func (a *applier) target(room int64, msg uint64, deletedOK bool) error {
	var deleted bool
	err := a.stmt(stmtGetMessageState).QueryRowContext(a.ctx, room, int64(msg)).Scan(&a.targetRow, &a.targetBody, &deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("message %d: %w", msg, store.ErrNotFound)
	}
	if err != nil {
		return err
	}
	if deleted && !deletedOK {
		return fmt.Errorf("message %d is deleted: %w", msg, store.ErrConflict)
	}
	return nil
}

// The writer's prepared statements.
const (
	stmtGetHead = iota
	stmtInsertEvent
	stmtInsertMessage
	stmtGetMessageState
	stmtEditMessage
	stmtDeleteMessage
	stmtDeleteReactions
	stmtScrubEvents
	stmtAddReaction
	stmtRemoveReaction
	stmtGetReaction
	stmtGetUser
	stmtIndex
	stmtGetClientID
	stmtThreadReply
	stmtAddMention
	stmtGetPin
	stmtAddPin
	stmtDeletePin
	numStmts
)

var writerSQL = [numStmts]string{
	stmtGetHead: `SELECT (SELECT max(seq) FROM events WHERE room_id = rooms.id) FROM rooms WHERE id = ?`,
	stmtInsertEvent: `INSERT INTO events (room_id, seq, kind, user_id, body, reply_to, target, emoji, created_at, client_id, thread, mentions, mention_room)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
	stmtInsertMessage: `INSERT INTO messages (room_id, seq, author_id, body, reply_to, created_at, client_id, thread, mentions, mention_room)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
	stmtGetMessageState: `SELECT id, body, deleted FROM messages WHERE room_id = ? AND seq = ?`,
	stmtEditMessage:     `UPDATE messages SET body = ?, edited_at = ? WHERE room_id = ? AND seq = ?`,
	stmtDeleteMessage:   `UPDATE messages SET body = '', deleted = 1 WHERE room_id = ? AND seq = ?`,
	stmtDeleteReactions: `DELETE FROM reactions WHERE room_id = ? AND seq = ?`,
	// A delete scrubs the text from the log too: the message event and its
	// edits keep their place (seqs stay gap-free) but lose their body.
	stmtScrubEvents:    `UPDATE events SET body = '' WHERE room_id = ?1 AND (seq = ?2 OR (kind = 'edit' AND target = ?2))`,
	stmtAddReaction:    `INSERT INTO reactions (room_id, seq, emoji, user_id, created_at) VALUES (?, ?, ?, ?, ?)`,
	stmtRemoveReaction: `DELETE FROM reactions WHERE room_id = ? AND seq = ? AND emoji = ? AND user_id = ?`,
	stmtGetReaction:    `SELECT 1 FROM reactions WHERE room_id = ? AND seq = ? AND emoji = ? AND user_id = ?`,
	stmtGetUser:        `SELECT 1 FROM users WHERE id = ?`,
	// One statement for the whole batch: see migrations/0001_init.sql.
	stmtIndex: `INSERT INTO messages_fts (messages_fts, rowid, body)
		SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?) ORDER BY key`,
	stmtGetClientID: `SELECT seq, created_at, body, reply_to, thread, mentions, mention_room FROM messages
		WHERE room_id = ? AND author_id = ? AND client_id = ?`,
	stmtThreadReply: `UPDATE messages SET thread_replies = thread_replies + 1, thread_last_seq = ?3 WHERE room_id = ?1 AND seq = ?2`,
	stmtAddMention:  `INSERT INTO mentions (user_id, room_id, seq) VALUES (?, ?, ?)`,
	stmtGetPin:      `SELECT 1 FROM pins WHERE room_id = ? AND seq = ?`,
	stmtAddPin:      `INSERT INTO pins (room_id, seq, user_id, created_at) VALUES (?, ?, ?, ?)`,
	stmtDeletePin:   `DELETE FROM pins WHERE room_id = ? AND seq = ?`,
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
