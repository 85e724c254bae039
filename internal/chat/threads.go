package chat

import (
	"context"
	"fmt"
	"sort"

	"github.com/sori-dev/sori/internal/store"
)

// Threads, pins and permalinks (issue 14, docs/api.md).

// MaxPins bounds the pinned messages of one room.
const MaxPins = 50

// around returns up to limit messages around seq, oldest first: a
// permalink's page.
func (s *Service) around(ctx context.Context, actor store.User, roomID int64, seq uint64, limit int) ([]store.Message, error) {
	if _, err := s.member(ctx, actor, roomID); err != nil {
		return nil, err
	}
	before, err := s.st.MessagesBefore(ctx, roomID, seq, limit/2)
	if err != nil {
		return nil, fmt.Errorf("chat: messages of room %d around %d: %w", roomID, seq, err)
	}
	if limit/2 == 0 {
		before = nil
	}
	after, err := s.st.MessagesAfter(ctx, roomID, seq-1, limit-len(before))
	if err != nil {
		return nil, fmt.Errorf("chat: messages of room %d around %d: %w", roomID, seq, err)
	}
	sort.Slice(before, func(i, j int) bool { return before[i].Seq < before[j].Seq })
	return append(before, after...), nil
}

// Thread returns a thread's root message and up to limit of its replies
// after seq after, oldest first.
func (s *Service) Thread(ctx context.Context, actor store.User, roomID int64, root, after uint64, limit int) (store.Message, []store.Message, error) {
	if _, err := s.member(ctx, actor, roomID); err != nil {
		return store.Message{}, nil, err
	}
	m, err := s.st.GetMessage(ctx, roomID, root)
	if err != nil {
		return store.Message{}, nil, storeErr(err, errNoMessage, "")
	}
	if m.Thread != 0 {
		return store.Message{}, nil, badRequest("that message is a reply; its thread is " + fmt.Sprint(m.Thread))
	}
	ms, err := s.st.ThreadMessages(ctx, roomID, root, after, store.ClampLimit(limit))
	if err != nil {
		return store.Message{}, nil, fmt.Errorf("chat: thread %d of room %d: %w", root, roomID, err)
	}
	if ms == nil {
		ms = []store.Message{}
	}
	return m, ms, nil
}

// Pin pins (pin true) or unpins message seq in a room: any member may,
// and the room's log records it as a "pin" or "unpin" event.
func (s *Service) Pin(ctx context.Context, actor store.User, roomID int64, seq uint64, pin bool) (Appended, error) {
	kind := store.EventPin
	if !pin {
		kind = store.EventUnpin
	}
	return s.Append(ctx, actor, roomID, EventData{Type: string(kind), Target: seq})
}

// Pins returns a room's pinned messages, most recently pinned first.
func (s *Service) Pins(ctx context.Context, actor store.User, roomID int64) ([]store.Pin, error) {
	if _, err := s.member(ctx, actor, roomID); err != nil {
		return nil, err
	}
	ps, err := s.st.ListPins(ctx, roomID)
	if err != nil {
		return nil, storeErr(err, errNoRoom, "")
	}
	return ps, nil
}
