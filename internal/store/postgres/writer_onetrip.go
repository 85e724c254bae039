package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sori-dev/sori/internal/store"
)

// The one-round-trip batch (issue 12, appends throughput).
//
// With fsync on, an append is acknowledged after its batch's commit cycle,
// and each node's writer has one batch in flight, so the cycle's length sets
// the rate when senders wait for their acks. Most batches are plain
// messages: no reply, no thread, from users the writer has already seen.
// Their checks need nothing brought back into Go before the writes: a room
// exists if its row can be locked, and a client id that is already stored
// makes the insert break messages_client's uniqueness. Such a batch goes as one
// pipeline: BEGIN; the room locks in id order, which also return each
// room's last_seq; the bulk inserts of messages, events (and mentions),
// each numbering an event last_seq + its rank among the batch's events for
// its room; the UPDATE that advances each last_seq by its count; COMMIT.
// One round trip instead of two, and the rooms stay locked only while the
// server runs it.
//
// The invariants are the two-trip path's. The inserts read last_seq after
// the lock statement has been granted the rows (under READ COMMITTED each
// statement takes a new snapshot), so they see what the locks returned:
// every batch another node committed to these rooms, and nothing newer,
// since no one else can change a locked row. Seqs continue each room's
// last_seq without a gap, in batch order; an event of an unknown room joins
// no row, is not written and takes no seq; a failure rolls everything back,
// last_seq included. A repeated client id (a client's retry, rare) is
// sent optimistically: the unique violation rolls the batch back and the
// writer sends it again the two-trip way, which answers the repeat with
// the stored message. A key repeated within the batch goes two trips at
// once.

// errClientIDStored reports that a one-trip batch carried a client id
// already stored; nothing of the batch was written.
var errClientIDStored = errors.New("a client id of the batch is already stored")

// oneTrip reports whether every live event of batch can go in one round
// trip: messages without a reply or thread, from known users, no client id
// twice.
func (s *Store) oneTrip(batch []*appendReq, live []int) bool {
	if s.opts.twoTrips {
		return false
	}
	var keys map[clientKey]bool
	for _, i := range live {
		ev := batch[i].ev
		if ev.Kind != store.EventMessage || ev.ReplyTo != 0 || ev.Thread != 0 {
			return false
		}
		if _, ok := s.knownUsers[ev.UserID]; !ok {
			return false
		}
		if ev.ClientID != "" {
			k := clientKey{ev.RoomID, ev.UserID, ev.ClientID}
			if keys[k] {
				return false
			}
			if keys == nil {
				keys = map[clientKey]bool{}
			}
			keys[k] = true
		}
	}
	return true
}

// applyOneTrip commits a batch that oneTrip accepted, filling results for
// the live requests. Like applyBatch it returns an error only when the
// transaction as a whole failed.
func (s *Store) applyOneTrip(ctx context.Context, conn *pgxpool.Conn, batch []*appendReq, live []int, lockWait time.Duration, results []appendResult) error {
	var (
		rooms, ranks, users   []int64
		bodies, lex, mentions []string
		clients               []string
		at                    []time.Time
		mentionRoom           []bool
		// one row per mentioned user
		mUser, mRoom, mRank []int64
	)
	count := map[int64]int64{}        // room → events of the batch so far
	lastAt := map[int64]time.Time{}   // room → created_at of its last event
	rank := make([]int64, len(batch)) // an event's place among its room's
	for _, i := range live {
		ev := batch[i].ev
		count[ev.RoomID]++
		rank[i] = count[ev.RoomID]
		lastAt[ev.RoomID] = ev.CreatedAt
		rooms, ranks, users = append(rooms, ev.RoomID), append(ranks, rank[i]), append(users, ev.UserID)
		bodies, lex = append(bodies, ev.Body), append(lex, strings.Join(lexemes(ev.Body), " "))
		at, mentions, mentionRoom = append(at, ev.CreatedAt), append(mentions, idArray(ev.Mentions)), append(mentionRoom, ev.MentionRoom)
		clients = append(clients, ev.ClientID)
		for _, u := range ev.Mentions {
			mUser, mRoom, mRank = append(mUser, u), append(mRoom, ev.RoomID), append(mRank, rank[i])
		}
	}
	var hRoom, hCount []int64
	var hAt []time.Time
	for room, n := range count {
		hRoom, hCount, hAt = append(hRoom, room), append(hCount, n), append(hAt, lastAt[room])
	}
	lockRooms := slices.Sorted(maps.Keys(count))

	b := &pgx.Batch{}
	queueBegin(b, lockWait)
	b.Queue(`SELECT id, last_seq FROM rooms WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, lockRooms)
	b.Queue(`INSERT INTO messages (room_id, seq, author_id, body, reply_to, created_at, tsv, client_id, thread, mentions, mention_room)
		SELECT t.r, h.last_seq + t.k, t.a, t.b, 0, t.c, array_to_tsvector(string_to_array(t.l, ' ')), t.ci, 0, t.mn::bigint[], t.mr
		FROM (SELECT unnest($1::bigint[]) r, unnest($2::bigint[]) k, unnest($3::bigint[]) a, unnest($4::text[]) b,
			unnest($5::text[]) l, unnest($6::timestamptz[]) c, unnest($7::text[]) mn, unnest($8::boolean[]) mr,
			unnest($9::text[]) ci) t
		JOIN rooms h ON h.id = t.r AND h.id = ANY($1)`, rooms, ranks, users, bodies, lex, at, mentions, mentionRoom, clients)
	b.Queue(`INSERT INTO events (room_id, seq, kind, user_id, body, reply_to, target, emoji, created_at, client_id, thread, mentions, mention_room)
		SELECT t.r, h.last_seq + t.k, 'message', t.u, t.b, 0, 0, '', t.c, t.ci, 0, t.mn::bigint[], t.mr
		FROM (SELECT unnest($1::bigint[]) r, unnest($2::bigint[]) k, unnest($3::bigint[]) u, unnest($4::text[]) b,
			unnest($5::timestamptz[]) c, unnest($6::text[]) mn, unnest($7::boolean[]) mr, unnest($8::text[]) ci) t
		JOIN rooms h ON h.id = t.r AND h.id = ANY($1)`, rooms, ranks, users, bodies, at, mentions, mentionRoom, clients)
	if len(mUser) > 0 {
		b.Queue(`INSERT INTO mentions (user_id, room_id, seq)
			SELECT t.u, t.r, h.last_seq + t.k FROM (SELECT unnest($1::bigint[]) u, unnest($2::bigint[]) r, unnest($3::bigint[]) k) t
			JOIN rooms h ON h.id = t.r AND h.id = ANY($2)`, mUser, mRoom, mRank)
	}
	b.Queue(`UPDATE rooms r SET last_seq = r.last_seq + t.n, last_event_at = t.c
		FROM (SELECT unnest($1::bigint[]) id, unnest($2::bigint[]) n, unnest($3::timestamptz[]) c) t
		WHERE r.id = t.id AND r.id = ANY($1)`, hRoom, hCount, hAt)
	commit := s.failBatch == nil
	if commit {
		b.Queue(`COMMIT`)
	}
	br := conn.SendBatch(ctx, b)
	defer br.Close()
	if err := readBegin(br); err != nil {
		return err
	}
	heads := map[int64]uint64{}
	var id int64
	var last seqCol
	if _, err := pgx.ForEachRow(mustRows(br.Query()), []any{&id, &last}, func() error {
		heads[id] = uint64(last)
		return nil
	}); err != nil {
		return fmt.Errorf("lock rooms: %w", err)
	}
	for range len(b.QueuedQueries) - 3 { // after BEGIN, set_config and the locks
		if _, err := br.Exec(); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == codeUnique && pe.ConstraintName == "messages_client" {
				return errClientIDStored
			}
			return unexpected(err)
		}
	}
	if err := br.Close(); err != nil {
		return err
	}
	if !commit {
		// Tests: fail just before COMMIT.
		if err := s.failBatch(len(batch)); err != nil {
			_, _ = conn.Exec(ctx, "ROLLBACK")
			return err
		}
		if _, err := conn.Exec(ctx, "COMMIT"); err != nil {
			return err
		}
	}
	for _, i := range live {
		ev := batch[i].ev
		head, ok := heads[ev.RoomID]
		if !ok {
			results[i].err = fmt.Errorf("store: append %s to room %d: room %d: %w", ev.Kind, ev.RoomID, ev.RoomID, store.ErrNotFound)
			continue
		}
		ev.Seq = head + uint64(rank[i])
		results[i].ev = ev
	}
	s.oneTripBatches.Add(1)
	return nil
}
