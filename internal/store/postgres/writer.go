package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sori-dev/sori/internal/store"
)

// Group commit across nodes.
//
// Each Store (one per node) has one writer goroutine. AppendEvent hands its
// event over an unbuffered channel and waits; the writer takes one request,
// then every request already waiting (up to Options.MaxBatch), and commits
// them in one transaction. A batch of plain messages takes one round trip
// (writer_onetrip.go); any other batch takes two (pipelines):
//
//  1. BEGIN, then lock the batch's rooms with SELECT … FOR NO KEY UPDATE
//     in id order,
//     reading each room's last_seq; then, in the same pipeline, read what
//     the checks need (unknown users, target messages, reactions). The
//     reads run after the locks are granted, so under READ COMMITTED they
//     see every batch another node committed to these rooms before us.
//  2. Check each event in Go against that state plus the batch's own
//     earlier events, assign seqs last_seq+1, +2, … to the accepted ones,
//     and send all writes in one pipeline: one INSERT … unnest for the new
//     messages, one for the events, one statement per edit, delete or
//     reaction, one UPDATE of rooms.last_seq for every room, and COMMIT,
//     which releases the room locks.
//
// A room's lock is held from step 1 to COMMIT, so appends to one room from
// any number of nodes are serialized: the next holder reads the last_seq
// this one committed, and commit order is seq order with no gap. Locking in
// id order means two nodes whose batches share rooms cannot deadlock. A
// rejected event (ErrNotFound, ErrConflict) takes no seq and the rest of the
// batch commits; any database error rolls the whole batch back, every caller
// gets the error, and since last_seq is rolled back too no seq is used.
// FOR NO KEY UPDATE (not FOR UPDATE) lets AddMember and CreateFile, whose
// foreign keys take KEY SHARE on the room, proceed during a batch.

// batchTimeout bounds one batch transaction, so a database that stops
// answering fails the callers instead of hanging the writer.
const batchTimeout = 30 * time.Second

// lockWaitOf is how long the batch may wait for its rooms' row locks: until
// the last of its live callers' deadlines, at most batchTimeout.
func lockWaitOf(batch []*appendReq, live []int) time.Duration {
	var last time.Time
	for _, i := range live {
		d, ok := batch[i].ctx.Deadline()
		if !ok {
			return batchTimeout
		}
		if d.After(last) {
			last = d
		}
	}
	return min(batchTimeout, time.Until(last))
}

// queueBegin queues the batch transaction's BEGIN and bounds its waits for
// row locks by lockWait (lock_timeout, local to the transaction). A room
// row that another transaction holds (a DBA's session, a stuck client of
// the same database) then fails the batch once its last caller has
// stopped waiting, instead of committing it after the callers were told
// it failed, and instead of holding this node's writer, every room's
// appends, for batchTimeout. The server enforces it, so it holds although
// the whole one-trip pipeline, COMMIT included, is already sent.
// set_config takes the value as a parameter, so the statement's text, and
// the prepared statement cached for it, stays the same.
func queueBegin(b *pgx.Batch, lockWait time.Duration) {
	b.Queue(`BEGIN ISOLATION LEVEL READ COMMITTED`)
	b.Queue(`SELECT set_config('lock_timeout', $1, true)`, strconv.FormatInt(max(1, lockWait.Milliseconds()), 10))
}

// readBegin reads the results of queueBegin's two statements.
func readBegin(br pgx.BatchResults) error {
	for range 2 {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
	}
	return nil
}

// appendReq is one AppendEvent call waiting for the writer.
type appendReq struct {
	ctx context.Context
	ev  store.Event
}

type appendResult struct {
	ev  store.Event
	err error
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
	s.appends.Run(s.commitBatch)
}

// commitBatch applies batch in one transaction and returns every caller's
// result. A
// serialization failure or deadlock reported by the database (neither is
// expected with rooms locked in order, but a DBA's trigger or a stricter
// default isolation could cause one) is retried a few times.
func (s *Store) commitBatch(batch []*appendReq) []appendResult {
	var results []appendResult
	var err error
	for try := 0; ; try++ {
		results = make([]appendResult, len(batch))
		err = s.applyBatch(batch, results)
		var pe *pgconn.PgError
		if err == nil || try == 2 || !errors.As(err, &pe) || (pe.Code != "40001" && pe.Code != "40P01") {
			break
		}
	}
	if err != nil {
		if s.isClosed() && !errors.Is(err, store.ErrClosed) {
			err = fmt.Errorf("%w: %v", store.ErrClosed, err)
		}
		err = fmt.Errorf("store: commit batch of %d events: %w", len(batch), unreachable(err))
		for i := range results {
			if results[i].err == nil || !isLogical(results[i].err) {
				results[i] = appendResult{err: err}
			}
		}
	} else {
		s.batches.Add(1)
		s.batchedEvents.Add(int64(len(batch)))
	}
	return results
}

// msgKey names a message: its room and seq.
type msgKey struct {
	room int64
	seq  uint64
}

// reactionKey names one user's emoji on a message.
type reactionKey struct {
	msgKey
	emoji string
	user  int64
}

// msgState is what the checks need to know of a message.
type msgState struct{ deleted bool }

// batchState is the database state the checks of one batch read, updated
// as the batch's own events are accepted.
type batchState struct {
	heads     map[int64]uint64 // room → last seq; absent = no such room
	msgs      map[msgKey]msgState
	reactions map[reactionKey]bool
	lastAt    map[int64]time.Time // room → created_at of its newest event in the batch
	clientIDs map[clientKey]store.Event
	pins      map[msgKey]bool
}

// applyBatch runs the batch's transaction. It fills results for each request
// and returns an error only when the transaction as a whole failed.
//
// The transaction takes two round trips: BEGIN travels in the pipeline of
// reads and COMMIT in the pipeline of writes. A failure anywhere leaves the
// connection inside a transaction or an aborted one; the pool destroys a
// connection released in that state, which rolls it back.
func (s *Store) applyBatch(batch []*appendReq, results []appendResult) error {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout) // the batch belongs to no single caller
	defer cancel()
	var live []int // indexes of requests whose callers still wait
	for i, req := range batch {
		if err := req.ctx.Err(); err != nil {
			// The caller has gone; do not commit what it no longer waits for.
			results[i].err = err
			continue
		}
		live = append(live, i)
	}
	if len(live) == 0 {
		return nil
	}
	lockWait := lockWaitOf(batch, live)
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if s.oneTrip(batch, live) {
		err := s.applyOneTrip(ctx, conn, batch, live, lockWait, results)
		if !errors.Is(err, errClientIDStored) {
			return err
		}
		// Nothing was written (the transaction is aborted): take two trips.
		if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
			return err
		}
	}
	st, err := s.readState(ctx, conn, batch, live, lockWait)
	if err != nil {
		return err
	}
	w := newWrites()
	for _, i := range live {
		ev := batch[i].ev
		if dup, ok := st.clientIDs[clientKey{ev.RoomID, ev.UserID, ev.ClientID}]; ok && ev.Kind == store.EventMessage && ev.ClientID != "" {
			results[i].ev = dup
			continue
		}
		if err := s.check(st, ev); err != nil {
			results[i].err = fmt.Errorf("store: append %s to room %d: %w", ev.Kind, ev.RoomID, err)
			continue
		}
		ev.Seq = st.heads[ev.RoomID] + 1
		st.heads[ev.RoomID] = ev.Seq
		st.lastAt[ev.RoomID] = ev.CreatedAt
		w.add(st, ev)
		results[i].ev = ev
	}
	if w.events == 0 {
		// Everything was rejected: nothing to write.
		_, err := conn.Exec(ctx, "ROLLBACK")
		return err
	}
	if s.failBatch != nil {
		// Tests: write, then fail just before COMMIT.
		if err := w.send(ctx, conn, st, false); err != nil {
			return err
		}
		if err := s.failBatch(len(batch)); err != nil {
			_, _ = conn.Exec(ctx, "ROLLBACK")
			return err
		}
		_, err := conn.Exec(ctx, "COMMIT")
		return err
	}
	return w.send(ctx, conn, st, true)
}

// readState begins the transaction, locks the batch's rooms and reads, in
// one pipeline, what the checks need.
func (s *Store) readState(ctx context.Context, conn *pgxpool.Conn, batch []*appendReq, live []int, lockWait time.Duration) (*batchState, error) {
	var rooms, users, tRooms, tSeqs, rRooms, rSeqs, rUsers []int64
	var rEmojis []string
	var cRooms, cUsers, pRooms, pSeqs []int64
	var cIDs []string
	for _, i := range live {
		ev := batch[i].ev
		rooms = append(rooms, ev.RoomID)
		if _, ok := s.knownUsers[ev.UserID]; !ok {
			users = append(users, ev.UserID)
		}
		target := ev.Target
		if ev.Kind == store.EventMessage {
			target = ev.ReplyTo
		}
		if target != 0 {
			tRooms, tSeqs = append(tRooms, ev.RoomID), append(tSeqs, clampSeq(target))
		}
		if ev.Thread != 0 {
			tRooms, tSeqs = append(tRooms, ev.RoomID), append(tSeqs, clampSeq(ev.Thread))
		}
		if ev.ClientID != "" {
			cRooms, cUsers, cIDs = append(cRooms, ev.RoomID), append(cUsers, ev.UserID), append(cIDs, ev.ClientID)
		}
		if ev.Kind == store.EventPin || ev.Kind == store.EventUnpin {
			pRooms, pSeqs = append(pRooms, ev.RoomID), append(pSeqs, clampSeq(ev.Target))
		}
		if ev.Kind == store.EventReactionAdd || ev.Kind == store.EventReactionRemove {
			rRooms, rSeqs = append(rRooms, ev.RoomID), append(rSeqs, clampSeq(ev.Target))
			rEmojis, rUsers = append(rEmojis, ev.Emoji), append(rUsers, ev.UserID)
		}
	}
	slices.Sort(rooms)
	rooms = slices.Compact(rooms)

	// Only the room locks are always needed. A read whose key list is
	// empty is not sent: a batch of plain messages from known users then
	// costs BEGIN and the lock, instead of five more statements that the
	// server would plan and run for nothing (about a third of its CPU per
	// batch before).
	b := &pgx.Batch{}
	queueBegin(b, lockWait)
	b.Queue(`SELECT id, last_seq FROM rooms WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, rooms)
	if len(users) > 0 {
		b.Queue(`SELECT id FROM users WHERE id = ANY($1)`, users)
	}
	if len(tRooms) > 0 {
		b.Queue(`SELECT m.room_id, m.seq, m.deleted FROM messages m
		JOIN unnest($1::bigint[], $2::bigint[]) t (r, q) ON m.room_id = t.r AND m.seq = t.q`, tRooms, tSeqs)
	}
	if len(rRooms) > 0 {
		b.Queue(`SELECT x.room_id, x.seq, x.emoji, x.user_id FROM reactions x
		JOIN unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[]) t (r, q, e, u)
		ON x.room_id = t.r AND x.seq = t.q AND x.emoji = t.e AND x.user_id = t.u`, rRooms, rSeqs, rEmojis, rUsers)
	}
	queueChatReads(b, cRooms, cUsers, cIDs, pRooms, pSeqs)
	br := conn.SendBatch(ctx, b)
	defer br.Close()

	if err := readBegin(br); err != nil {
		return nil, err
	}
	st := &batchState{heads: map[int64]uint64{}, msgs: map[msgKey]msgState{}, reactions: map[reactionKey]bool{}, lastAt: map[int64]time.Time{},
		clientIDs: map[clientKey]store.Event{}, pins: map[msgKey]bool{}}
	var id int64
	var last seqCol
	if _, err := pgx.ForEachRow(mustRows(br.Query()), []any{&id, &last}, func() error {
		st.heads[id] = uint64(last)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("lock rooms: %w", err)
	}
	if len(users) > 0 {
		if _, err := pgx.ForEachRow(mustRows(br.Query()), []any{&id}, func() error {
			s.knownUsers[id] = struct{}{}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("read users: %w", err)
		}
	}
	var q seqCol
	if len(tRooms) > 0 {
		var deleted bool
		if _, err := pgx.ForEachRow(mustRows(br.Query()), []any{&id, &q, &deleted}, func() error {
			st.msgs[msgKey{id, uint64(q)}] = msgState{deleted: deleted}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("read target messages: %w", err)
		}
	}
	if len(rRooms) > 0 {
		var emoji string
		var user int64
		if _, err := pgx.ForEachRow(mustRows(br.Query()), []any{&id, &q, &emoji, &user}, func() error {
			st.reactions[reactionKey{msgKey{id, uint64(q)}, emoji, user}] = true
			return nil
		}); err != nil {
			return nil, fmt.Errorf("read reactions: %w", err)
		}
	}
	if err := readChatState(br, st, len(cRooms) > 0, len(pRooms) > 0); err != nil {
		return nil, err
	}
	return st, br.Close()
}

// mustRows adapts BatchResults.Query, whose error the Rows also carries, to
// ForEachRow.
func mustRows(rows pgx.Rows, _ error) pgx.Rows { return rows }

// check rejects an event that would break a reference or a rule, with a
// store sentinel, from the batch's state.
func (s *Store) check(st *batchState, ev store.Event) error {
	if _, ok := st.heads[ev.RoomID]; !ok {
		return fmt.Errorf("room %d: %w", ev.RoomID, store.ErrNotFound)
	}
	if _, ok := s.knownUsers[ev.UserID]; !ok {
		return fmt.Errorf("user %d: %w", ev.UserID, store.ErrNotFound)
	}
	target := func(seq uint64, deletedOK bool) error {
		m, ok := st.msgs[msgKey{ev.RoomID, seq}]
		if !ok {
			return fmt.Errorf("message %d: %w", seq, store.ErrNotFound)
		}
		if m.deleted && !deletedOK {
			return fmt.Errorf("message %d is deleted: %w", seq, store.ErrConflict)
		}
		return nil
	}
	switch ev.Kind {
	case store.EventMessage:
		if ev.ReplyTo != 0 {
			if err := target(ev.ReplyTo, true); err != nil {
				return err
			}
		}
		if ev.Thread != 0 {
			return target(ev.Thread, false)
		}
		return nil
	case store.EventPin, store.EventUnpin:
		if err := target(ev.Target, false); err != nil {
			return err
		}
		pinned := st.pins[msgKey{ev.RoomID, ev.Target}]
		if pinned && ev.Kind == store.EventPin {
			return fmt.Errorf("message %d is already pinned: %w", ev.Target, store.ErrConflict)
		}
		if !pinned && ev.Kind == store.EventUnpin {
			return fmt.Errorf("message %d is not pinned: %w", ev.Target, store.ErrNotFound)
		}
		return nil
	case store.EventReactionAdd, store.EventReactionRemove:
		if err := target(ev.Target, false); err != nil {
			return err
		}
		has := st.reactions[reactionKey{msgKey{ev.RoomID, ev.Target}, ev.Emoji, ev.UserID}]
		if has && ev.Kind == store.EventReactionAdd {
			return fmt.Errorf("reaction %s of user %d: %w", ev.Emoji, ev.UserID, store.ErrConflict)
		}
		if !has && ev.Kind == store.EventReactionRemove {
			return fmt.Errorf("reaction %s of user %d: %w", ev.Emoji, ev.UserID, store.ErrNotFound)
		}
		return nil
	default: // edit, delete
		return target(ev.Target, false)
	}
}

// writes collects a batch's accepted events as column arrays for the bulk
// inserts, and the statements for edits, deletes and reactions in order.
type writes struct {
	events int
	// messages
	mRoom, mSeq, mAuthor, mReply []int64
	mBody, mLex                  []string
	mAt                          []time.Time
	// events (and, for messages, the same columns of messages)
	eRoom, eSeq, eUser, eReply, eTarget []int64
	eKind, eBody, eEmoji                []string
	eAt                                 []time.Time
	eClient                             []string
	eThread                             []int64
	eMentions                           []string // as bigint[] literals
	eMentionRoom                        []bool
	mClient                             []string
	mThread                             []int64
	mMentions                           []string
	mMentionRoom                        []bool
	ops                                 pgx.Batch
}

func newWrites() *writes { return &writes{} }

// add records ev and updates st so later events of the batch see it.
func (w *writes) add(st *batchState, ev store.Event) {
	w.events++
	room, q, target := ev.RoomID, int64(ev.Seq), int64(ev.Target)
	w.eRoom, w.eSeq, w.eUser = append(w.eRoom, room), append(w.eSeq, q), append(w.eUser, ev.UserID)
	w.eReply, w.eTarget = append(w.eReply, int64(ev.ReplyTo)), append(w.eTarget, target)
	w.eKind, w.eBody, w.eEmoji = append(w.eKind, string(ev.Kind)), append(w.eBody, ev.Body), append(w.eEmoji, ev.Emoji)
	w.eAt = append(w.eAt, ev.CreatedAt)
	w.eClient, w.eThread = append(w.eClient, ev.ClientID), append(w.eThread, int64(ev.Thread))
	w.eMentions, w.eMentionRoom = append(w.eMentions, idArray(ev.Mentions)), append(w.eMentionRoom, ev.MentionRoom)
	switch ev.Kind {
	case store.EventMessage:
		st.msgs[msgKey{room, ev.Seq}] = msgState{}
		w.mRoom, w.mSeq, w.mAuthor, w.mReply = append(w.mRoom, room), append(w.mSeq, q), append(w.mAuthor, ev.UserID), append(w.mReply, int64(ev.ReplyTo))
		w.mBody, w.mLex, w.mAt = append(w.mBody, ev.Body), append(w.mLex, strings.Join(lexemes(ev.Body), " ")), append(w.mAt, ev.CreatedAt)
		w.mClient, w.mThread = append(w.mClient, ev.ClientID), append(w.mThread, int64(ev.Thread))
		w.mMentions, w.mMentionRoom = append(w.mMentions, idArray(ev.Mentions)), append(w.mMentionRoom, ev.MentionRoom)
		w.addMessageExtras(st, ev)
	case store.EventEdit:
		w.ops.Queue(`UPDATE messages SET body = $1, edited_at = $2, tsv = array_to_tsvector(string_to_array($3, ' '))
			WHERE room_id = $4 AND seq = $5`, ev.Body, ev.CreatedAt, strings.Join(lexemes(ev.Body), " "), room, target)
	case store.EventDelete:
		st.msgs[msgKey{room, ev.Target}] = msgState{deleted: true}
		// The tombstone stays in messages with an empty body and no index
		// entry; reactions go; the message event and its edits keep their
		// place in the log (seqs stay gap-free) but lose their text.
		w.ops.Queue(`UPDATE messages SET body = '', deleted = true, tsv = ''::tsvector WHERE room_id = $1 AND seq = $2`, room, target)
		w.ops.Queue(`DELETE FROM reactions WHERE room_id = $1 AND seq = $2`, room, target)
		w.ops.Queue(`UPDATE events SET body = '' WHERE room_id = $1 AND (seq = $2 OR (kind = 'edit' AND target = $2))`, room, target)
		delete(st.pins, msgKey{room, ev.Target})
		w.ops.Queue(`DELETE FROM pins WHERE room_id = $1 AND seq = $2`, room, target)
	case store.EventPin:
		st.pins[msgKey{room, ev.Target}] = true
		w.ops.Queue(`INSERT INTO pins (room_id, seq, user_id, created_at) VALUES ($1, $2, $3, $4)`, room, target, ev.UserID, ev.CreatedAt)
	case store.EventUnpin:
		delete(st.pins, msgKey{room, ev.Target})
		w.ops.Queue(`DELETE FROM pins WHERE room_id = $1 AND seq = $2`, room, target)
	case store.EventReactionAdd:
		st.reactions[reactionKey{msgKey{room, ev.Target}, ev.Emoji, ev.UserID}] = true
		w.ops.Queue(`INSERT INTO reactions (room_id, seq, emoji, user_id, created_at) VALUES ($1, $2, $3, $4, $5)`,
			room, target, ev.Emoji, ev.UserID, ev.CreatedAt)
	case store.EventReactionRemove:
		delete(st.reactions, reactionKey{msgKey{room, ev.Target}, ev.Emoji, ev.UserID})
		w.ops.Queue(`DELETE FROM reactions WHERE room_id = $1 AND seq = $2 AND emoji = $3 AND user_id = $4`,
			room, target, ev.Emoji, ev.UserID)
	}
}

// send writes everything in one pipeline: new messages, then the events
// (so a delete's scrub reaches events of this batch), then the other
// changes in event order, then the rooms' heads, then COMMIT if commit.
func (w *writes) send(ctx context.Context, conn *pgxpool.Conn, st *batchState, commit bool) error {
	b := &pgx.Batch{}
	if len(w.mRoom) > 0 {
		b.Queue(`INSERT INTO messages (room_id, seq, author_id, body, reply_to, created_at, tsv, client_id, thread, mentions, mention_room)
			SELECT r, q, a, b, p, c, array_to_tsvector(string_to_array(l, ' ')), ci, th, mn::bigint[], mr
			FROM (SELECT unnest($1::bigint[]) r, unnest($2::bigint[]) q, unnest($3::bigint[]) a, unnest($4::text[]) b,
				unnest($5::bigint[]) p, unnest($6::timestamptz[]) c, unnest($7::text[]) l, unnest($8::text[]) ci,
				unnest($9::bigint[]) th, unnest($10::text[]) mn, unnest($11::boolean[]) mr) t`, w.mRoom, w.mSeq, w.mAuthor, w.mBody, w.mReply, w.mAt, w.mLex,
			w.mClient, w.mThread, w.mMentions, w.mMentionRoom)
	}
	b.Queue(`INSERT INTO events (room_id, seq, kind, user_id, body, reply_to, target, emoji, created_at, client_id, thread, mentions, mention_room)
		SELECT r, q, k, u, b, p, g, e, c, ci, th, mn::bigint[], mr
		FROM (SELECT unnest($1::bigint[]) r, unnest($2::bigint[]) q, unnest($3::text[]) k, unnest($4::bigint[]) u,
			unnest($5::text[]) b, unnest($6::bigint[]) p, unnest($7::bigint[]) g, unnest($8::text[]) e,
			unnest($9::timestamptz[]) c, unnest($10::text[]) ci, unnest($11::bigint[]) th, unnest($12::text[]) mn,
			unnest($13::boolean[]) mr) t`,
		w.eRoom, w.eSeq, w.eKind, w.eUser, w.eBody, w.eReply, w.eTarget, w.eEmoji, w.eAt,
		w.eClient, w.eThread, w.eMentions, w.eMentionRoom)
	b.QueuedQueries = append(b.QueuedQueries, w.ops.QueuedQueries...)
	var hRoom, hSeq []int64
	var hAt []time.Time
	for room, at := range st.lastAt {
		hRoom, hSeq, hAt = append(hRoom, room), append(hSeq, int64(st.heads[room])), append(hAt, at)
	}
	b.Queue(`UPDATE rooms r SET last_seq = t.q, last_event_at = t.c
		FROM (SELECT unnest($1::bigint[]) id, unnest($2::bigint[]) q, unnest($3::timestamptz[]) c) t
		WHERE r.id = t.id AND r.id = ANY($1)`, hRoom, hSeq, hAt)
	if commit {
		b.Queue(`COMMIT`)
	}
	br := conn.SendBatch(ctx, b)
	for range b.QueuedQueries {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return unexpected(err)
		}
	}
	return br.Close()
}

// unexpected keeps a constraint error raised after the checks passed from
// looking like a per-event outcome, so that it fails the batch.
func unexpected(err error) error {
	if err != nil && isLogical(classify(err)) {
		return fmt.Errorf("write after checks passed: %v", err)
	}
	return err
}
