package signal

import (
	"context"
	"encoding/json"
	"sync"
)

// Call state for the people of a room who are not in its call (docs/calls.md,
// "Call state outside the call"): the Service reports every change of who is
// in a call, and of its mode, to a Notifier, which the server turns into a
// publication on the chat room's live channel and, when a call starts in a
// direct room, into a ring on the other user's personal channel.

// CallState is what members of a room see of its call:
// {"type":"call","active":true,"participants":["alice","bob"],"mode":"mesh"}.
// Participants are user names in join order, each once (a user may join
// from two devices); an ended call is active false with no participants.
type CallState struct {
	Type         string   `json:"type"`
	Active       bool     `json:"active"`
	Participants []string `json:"participants"`
	Mode         Mode     `json:"mode"`
}

// CallStateType is the "type" of a CallState.
const CallStateType = "call"

// Notifier receives the call-state changes of a Service. Its methods are
// called one at a time, in the order of the changes, from a goroutine of the
// Service's and never with the Service's lock held, so they may publish
// (and block briefly); a slow Notifier delays only later notifications,
// which coalesce per room meanwhile.
type Notifier interface {
	// CallChanged reports the state of room's call after a change.
	CallChanged(room Room, st CallState)
	// CallStarted reports that by started a call in room (the first join):
	// a direct room's other member is rung.
	CallStarted(room Room, by string)
}

// note is one pending notification: a room's latest state, or a ring.
type note struct {
	room  Room
	state *CallState // nil for a ring
	by    string
}

// notes delivers notifications to a Notifier in order, off the Service's
// lock. A room's state that is still pending when a newer one comes is
// replaced in place, so the queue holds at most one state per room with a
// call plus the rings of calls started meanwhile.
//
// mu guards the fields; it is taken under Service.mu and never the other way.
type notes struct {
	to      Notifier
	mu      sync.Mutex
	pending []note
	running bool
}

func (q *notes) push(n note) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if n.state != nil {
		for i := range q.pending {
			if q.pending[i].room == n.room && q.pending[i].state != nil {
				q.pending[i].state = n.state
				return
			}
		}
	}
	q.pending = append(q.pending, n)
	if !q.running {
		q.running = true
		go q.drain()
	}
}

func (q *notes) drain() {
	for {
		q.mu.Lock()
		if len(q.pending) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		n := q.pending[0]
		q.pending = q.pending[1:]
		q.mu.Unlock()
		if n.state != nil {
			q.to.CallChanged(n.room, *n.state)
		} else {
			q.to.CallStarted(n.room, n.by)
		}
	}
}

// stateOf is r's call state; r may be empty (the call ended).
func stateOf(r *room) CallState {
	st := CallState{Type: CallStateType, Active: len(r.members) > 0, Participants: []string{}, Mode: r.mode}
	seen := map[string]bool{}
	for _, p := range r.sorted() {
		if !seen[p.user] {
			seen[p.user] = true
			st.Participants = append(st.Participants, p.user)
		}
	}
	if !st.Active {
		st.Mode = ModeMesh
	}
	return st
}

// noteLocked queues r's state if it changed since the last one queued, and
// a ring when the call has just started (by joined an empty room). Called
// with s.mu held, after every join, removal and switch of mode.
func (s *Service) noteLocked(r *room, startedBy string) {
	if s.notes == nil {
		return
	}
	st := stateOf(r)
	key, _ := json.Marshal(st) // plain data: cannot fail
	if string(key) == r.noted {
		return
	}
	r.noted = string(key)
	s.notes.push(note{room: r.name, state: &st})
	if startedBy != "" {
		s.notes.push(note{room: r.name, by: startedBy})
	}
}

// StatusRequest is the data of call.status.
type StatusRequest struct {
	Room Room `json:"room"`
}

// Status returns the state of req.Room's call to a member of the room (in
// or out of the call): what a client shows before the first change is
// published, for instance when it opens the room.
func (s *Service) Status(ctx context.Context, c Conn, req StatusRequest) (CallState, error) {
	user := c.User()
	if user == "" {
		return CallState{}, errAnonymous
	}
	if !validRoom(req.Room) {
		return CallState{}, errBadRoom
	}
	if err := s.lockMember(ctx, user, req.Room); err != nil {
		return CallState{}, err
	}
	defer s.mu.Unlock()
	r := s.rooms[req.Room]
	if r == nil {
		r = &room{name: req.Room, mode: ModeMesh}
	}
	return stateOf(r), nil
}

func (s *Service) statusMethod(ctx context.Context, c Conn, data json.RawMessage) (any, error) {
	var req StatusRequest
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	return s.Status(ctx, c, req)
}
