package postgres

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/sori-dev/sori/internal/store"
)

// The writer's part of idempotent send, threads, mentions and pins (issue
// 14), called from readState, applyBatch and writes.add.

// clientKey is the dedup key of idempotent send.
type clientKey struct {
	room, user int64
	id         string
}

// clientIDsSQL reads the stored messages that carry the given (room,
// author, client id) keys. messages_client is a partial index, on the
// messages whose client id is not empty, which the planner uses only when
// the query itself requires that of messages: without the last clause it
// scanned the whole table for every batch with a client id (0.5 s per
// batch at 192,000 messages).
const clientIDsSQL = `SELECT m.room_id, m.author_id, m.client_id, m.seq, m.created_at, m.body, m.reply_to, m.thread, m.mentions, m.mention_room
	FROM messages m JOIN unnest($1::bigint[], $2::bigint[], $3::text[]) t (r, u, c)
	ON m.room_id = t.r AND m.author_id = t.u AND m.client_id = t.c AND m.client_id <> ''`

// queueChatReads queues, after the room locks, the reads of the batch's
// client ids (so a key another node committed to the same room is seen:
// the lock serializes the two batches) and of the pins its pin events
// concern; each only when the batch has something to look up.
func queueChatReads(b *pgx.Batch, cRooms, cUsers []int64, cIDs []string, pRooms, pSeqs []int64) {
	if len(cRooms) > 0 {
		b.Queue(clientIDsSQL, cRooms, cUsers, cIDs)
	}
	if len(pRooms) > 0 {
		b.Queue(`SELECT p.room_id, p.seq FROM pins p JOIN unnest($1::bigint[], $2::bigint[]) t (r, q)
		ON p.room_id = t.r AND p.seq = t.q`, pRooms, pSeqs)
	}
}

// readChatState reads queueChatReads' results into st; clientIDs and pins
// say which of the two reads were queued.
func readChatState(br pgx.BatchResults, st *batchState, clientIDs, pins bool) error {
	var (
		ev       store.Event
		q        seqCol
		reply    seqCol
		thread   seqCol
		mentions []int64
	)
	if clientIDs {
		if _, err := pgx.ForEachRow(mustRows(br.Query()), []any{&ev.RoomID, &ev.UserID, &ev.ClientID, &q, &ev.CreatedAt, &ev.Body, &reply, &thread, &mentions, &ev.MentionRoom}, func() error {
			d := ev
			d.Kind, d.Seq, d.ReplyTo, d.Thread, d.Duplicate = store.EventMessage, uint64(q), uint64(reply), uint64(thread), true
			d.CreatedAt = d.CreatedAt.UTC()
			if len(mentions) > 0 {
				d.Mentions = append([]int64(nil), mentions...)
			}
			st.clientIDs[clientKey{d.RoomID, d.UserID, d.ClientID}] = d
			return nil
		}); err != nil {
			return fmt.Errorf("read client ids: %w", err)
		}
	}
	if pins {
		var room int64
		if _, err := pgx.ForEachRow(mustRows(br.Query()), []any{&room, &q}, func() error {
			st.pins[msgKey{room, uint64(q)}] = true
			return nil
		}); err != nil {
			return fmt.Errorf("read pins: %w", err)
		}
	}
	return nil
}

// addMessageExtras records an accepted message's client id (so a repeat
// later in the batch is a duplicate), counts a thread reply on its root
// and records its mentions.
func (w *writes) addMessageExtras(st *batchState, ev store.Event) {
	if ev.ClientID != "" {
		d := ev
		d.Duplicate = true
		st.clientIDs[clientKey{ev.RoomID, ev.UserID, ev.ClientID}] = d
	}
	if ev.Thread != 0 {
		w.ops.Queue(`UPDATE messages SET thread_replies = thread_replies + 1, thread_last_seq = $3 WHERE room_id = $1 AND seq = $2`,
			ev.RoomID, int64(ev.Thread), int64(ev.Seq))
	}
	if len(ev.Mentions) > 0 {
		w.ops.Queue(`INSERT INTO mentions (user_id, room_id, seq) SELECT u, $2, $3 FROM unnest($1::bigint[]) u`,
			ev.Mentions, ev.RoomID, int64(ev.Seq))
	}
}

// idArray is a bigint[] literal of ids, for the bulk inserts' text[]
// parameter (pgx cannot send an array of arrays of differing lengths).
func idArray(ids []int64) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	b.WriteByte('}')
	return b.String()
}
