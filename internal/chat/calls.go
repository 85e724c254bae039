package chat

import (
	"context"
	"fmt"

	"github.com/sori-dev/sori/internal/store"
)

// Call state for room members outside a call (docs/calls.md, "Call state
// outside the call"): the call signaling reports changes, the server passes
// them here, and they go out on the chat channels members already follow.

// CallSignal publishes a call's state (data, a {"type":"call",…} object) on
// the room's live channel as the server. Failures are logged: the call goes
// on whether or not the others heard of it.
func (s *Service) CallSignal(ctx context.Context, roomID int64, data any) {
	s.signal(ctx, roomID, "", data)
}

// RingDirect sends the personal event {"type":"call_ring","room","by"} to the
// other member of a direct room in which by started a call; other rooms ring
// no one.
func (s *Service) RingDirect(ctx context.Context, roomID int64, by string) error {
	r, err := s.st.GetRoom(ctx, roomID)
	if err != nil {
		return fmt.Errorf("chat: ring for a call in room %d: %w", roomID, err)
	}
	if r.Kind != store.RoomDirect {
		return nil
	}
	ms, err := s.st.ListMembers(ctx, roomID)
	if err != nil {
		return fmt.Errorf("chat: ring for a call in room %d: %w", roomID, err)
	}
	for _, m := range ms {
		u, err := s.st.GetUser(ctx, m.UserID)
		if err != nil {
			return fmt.Errorf("chat: ring for a call in room %d: %w", roomID, err)
		}
		s.notify(ctx, u.Username, by, map[string]any{"type": "call_ring", "room": roomID})
	}
	return nil
}
