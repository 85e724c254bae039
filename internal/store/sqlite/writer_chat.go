package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sori-dev/sori/internal/store"
)

// The writer's part of idempotent send, threads, mentions and pins (issue
// 14), called from applier.applyOne and applier.write.

// duplicate looks up a message event's ClientID among the author's messages
// in the room, including those written earlier in this batch (the batch's
// transaction sees them). ok reports a hit, and dup is the stored event.
func (a *applier) duplicate(ev store.Event) (dup store.Event, ok bool, err error) {
	if ev.Kind != store.EventMessage || ev.ClientID == "" {
		return store.Event{}, false, nil
	}
	var mentions string
	dup = store.Event{RoomID: ev.RoomID, Kind: store.EventMessage, UserID: ev.UserID, ClientID: ev.ClientID, Duplicate: true}
	err = a.stmt(stmtGetClientID).QueryRowContext(a.ctx, ev.RoomID, ev.UserID, ev.ClientID).Scan((*seq)(&dup.Seq),
		(*micros)(&dup.CreatedAt), &dup.Body, (*seq)(&dup.ReplyTo), (*seq)(&dup.Thread), &mentions, &dup.MentionRoom)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Event{}, false, nil
	}
	if err != nil {
		return store.Event{}, false, err
	}
	dup.Mentions = parseIDs(mentions)
	return dup, true, nil
}

// checkPin rejects a pin of a pinned message and an unpin of one that is
// not pinned. A deleted message cannot be pinned; deleting one unpins it.
func (a *applier) checkPin(ev store.Event) error {
	if err := a.target(ev.RoomID, ev.Target, false); err != nil {
		return err
	}
	var one int
	err := a.stmt(stmtGetPin).QueryRowContext(a.ctx, ev.RoomID, int64(ev.Target)).Scan(&one)
	switch {
	case err == nil && ev.Kind == store.EventPin:
		return fmt.Errorf("message %d is already pinned: %w", ev.Target, store.ErrConflict)
	case errors.Is(err, sql.ErrNoRows) && ev.Kind == store.EventUnpin:
		return fmt.Errorf("message %d is not pinned: %w", ev.Target, store.ErrNotFound)
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return err
	}
	return nil
}

// writeMessageExtras counts a thread reply on its root and records the
// message's mentions.
func (a *applier) writeMessageExtras(ev store.Event) error {
	if ev.Thread != 0 {
		if _, err := a.stmt(stmtThreadReply).ExecContext(a.ctx, ev.RoomID, int64(ev.Thread), int64(ev.Seq)); err != nil {
			return err
		}
	}
	for _, u := range ev.Mentions {
		if _, err := a.stmt(stmtAddMention).ExecContext(a.ctx, u, ev.RoomID, int64(ev.Seq)); err != nil {
			return err
		}
	}
	return nil
}

// formatIDs is the column form of a list of user ids: decimal, space
// separated.
func formatIDs(ids []int64) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	return b.String()
}

// parseIDs reads formatIDs' output; nil for none.
func parseIDs(s string) []int64 {
	var out []int64
	for _, f := range strings.Fields(s) {
		if id, err := strconv.ParseInt(f, 10, 64); err == nil {
			out = append(out, id)
		}
	}
	return out
}
