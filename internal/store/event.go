package store

import (
	"fmt"
	"slices"
	"time"
)

// NormalizeEvent is what every store does to an event before it appends it:
// it checks that ev carries what its kind needs and clears what
// it does not, so the log holds no stray fields, and stamps it (Stamp).
func NormalizeEvent(roomID int64, ev Event) (Event, error) {
	ev.RoomID, ev.Seq, ev.CreatedAt = roomID, 0, Stamp(ev.CreatedAt)
	bad := func(why string) (Event, error) {
		return Event{}, fmt.Errorf("store: append %s to room %d: %s: %w", ev.Kind, roomID, why, ErrInvalid)
	}
	switch ev.Kind {
	case EventMessage:
		ev.Target, ev.Emoji = 0, ""
		if len(ev.ClientID) > MaxClientID {
			return bad("client id too long")
		}
	case EventEdit:
		ev.ReplyTo, ev.Emoji = 0, ""
	case EventDelete, EventPin, EventUnpin:
		ev.Body, ev.ReplyTo, ev.Emoji = "", 0, ""
	case EventReactionAdd, EventReactionRemove:
		ev.Body, ev.ReplyTo = "", 0
		if ev.Emoji == "" {
			return bad("no emoji")
		}
	default:
		return bad("unknown kind")
	}
	if ev.Kind != EventMessage {
		ev.ClientID, ev.Thread, ev.Mentions, ev.MentionRoom = "", 0, nil, false
	}
	ev.Mentions = slices.Compact(slices.Sorted(slices.Values(ev.Mentions)))
	ev.Duplicate = false
	if ev.Kind != EventMessage && ev.Target == 0 {
		return bad("no target message")
	}
	return ev, nil
}

// Stamp returns t in UTC truncated to microseconds (both stores keep
// microseconds), or the current time so truncated when t is zero.
func Stamp(t time.Time) time.Time {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UTC().Truncate(time.Microsecond)
}
