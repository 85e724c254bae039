package chat

import "sync"

// RemovalReason says how a member stopped being a member of a room.
type RemovalReason string

// Removal reasons passed to membership observers.
const (
	RemovedLeft   RemovalReason = "left"   // Leave
	RemovedKicked RemovalReason = "kicked" // Kick
)

// MemberRemovedFunc hears that user (a username) is no longer a member of
// room roomID. It is called after the change is stored, on the goroutine of
// the action; it must not block, and must not call back into the Service.
type MemberRemovedFunc func(roomID int64, user string, reason RemovalReason)

// memberObservers holds the MemberRemovedFuncs; the zero value has none.
type memberObservers struct {
	mu      sync.RWMutex
	removed []MemberRemovedFunc
}

// OnMemberRemoved registers f to hear of every member that leaves or is
// kicked from a room, so that other modules (calls) can end what the member
// had in the room. It may be called at any time.
func (s *Service) OnMemberRemoved(f MemberRemovedFunc) {
	s.observers.mu.Lock()
	s.observers.removed = append(s.observers.removed, f)
	s.observers.mu.Unlock()
}

func (s *Service) memberRemoved(roomID int64, user string, reason RemovalReason) {
	s.observers.mu.RLock()
	fs := s.observers.removed
	s.observers.mu.RUnlock()
	for _, f := range fs {
		f(roomID, user, reason)
	}
}
