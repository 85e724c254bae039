package chat

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"unicode/utf8"

	"github.com/sori-dev/sori/internal/hub"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/store"
)

// Appended is the position of an event that the store committed and the hub
// fanned out.
type Appended struct {
	RoomID int64  `json:"room"`
	Seq    uint64 `json:"seq"`
	Epoch  string `json:"epoch"`
	// Duplicate is set when a message repeated its author's client_id in
	// the room: Seq is the earlier message's, and nothing was appended.
	Duplicate bool `json:"duplicate,omitempty"`
}

// Append publishes an event into a room: the one write path shared by the
// REST API and the real-time "publish" command. The event is validated and
// authorized by Backend.Append, committed by the store, and only then
// returned and delivered to subscribers.
func (s *Service) Append(ctx context.Context, actor store.User, roomID int64, ev EventData) (Appended, error) {
	ev.User, ev.Mentions, ev.MentionRoom = "", nil, false
	// JSON encoding would quietly turn invalid UTF-8 into U+FFFD; refuse it
	// here, as the real-time path's frame decoder does.
	if !utf8.ValidString(ev.Text) || !utf8.ValidString(ev.Emoji) {
		return Appended{}, badRequest("text and emoji must be valid UTF-8")
	}
	data, err := jsonMarshal(ev)
	if err != nil {
		return Appended{}, err
	}
	pos, err := s.hub.Publish(ctx, RoomChannel(roomID), data, actor.Username)
	if errors.Is(err, hub.ErrDuplicate) {
		return Appended{RoomID: roomID, Seq: pos.Offset, Epoch: pos.Epoch, Duplicate: true}, nil
	}
	if err != nil {
		return Appended{}, err
	}
	return Appended{RoomID: roomID, Seq: pos.Offset, Epoch: pos.Epoch}, nil
}

// Post posts a message, optionally in reply to another one.
func (s *Service) Post(ctx context.Context, actor store.User, roomID int64, text string, replyTo uint64) (Appended, error) {
	return s.PostMessage(ctx, actor, roomID, NewMessage{Text: text, ReplyTo: replyTo})
}

// NewMessage is a message to post.
type NewMessage struct {
	Text     string
	ReplyTo  uint64 // seq of the message quoted; 0 = none
	Thread   uint64 // seq of the root whose thread this replies in; 0 = main timeline
	ClientID string // the author's idempotency key; "" = none
}

// PostMessage posts m. A repeat of the author's ClientID in the room
// returns the earlier message's position with Duplicate set.
func (s *Service) PostMessage(ctx context.Context, actor store.User, roomID int64, m NewMessage) (Appended, error) {
	return s.Append(ctx, actor, roomID, EventData{Type: string(store.EventMessage), Text: m.Text, ReplyTo: m.ReplyTo, Thread: m.Thread, ClientID: m.ClientID})
}

// Edit replaces the text of actor's message seq.
func (s *Service) Edit(ctx context.Context, actor store.User, roomID int64, seq uint64, text string) (Appended, error) {
	return s.Append(ctx, actor, roomID, EventData{Type: string(store.EventEdit), Target: seq, Text: text})
}

// Delete tombstones message seq (its author, or a room admin or owner).
func (s *Service) Delete(ctx context.Context, actor store.User, roomID int64, seq uint64) (Appended, error) {
	return s.Append(ctx, actor, roomID, EventData{Type: string(store.EventDelete), Target: seq})
}

// React adds (add true) or removes actor's emoji reaction on message seq.
func (s *Service) React(ctx context.Context, actor store.User, roomID int64, seq uint64, emoji string, add bool) (Appended, error) {
	kind := store.EventReactionAdd
	if !add {
		kind = store.EventReactionRemove
	}
	return s.Append(ctx, actor, roomID, EventData{Type: string(kind), Target: seq, Emoji: emoji})
}

// Page selects messages: before a seq (newest first; 0 = from the newest) or,
// when Forward is set, after one (oldest first; After 0 = from the first).
// A non-zero After implies Forward.
type Page struct {
	Before  uint64
	After   uint64
	Forward bool
	Limit   int
	// Around, when set, asks for the messages around that seq instead
	// (itself included, when it is a message): half the limit before it,
	// the rest from it on.
	Around uint64
}

// Messages returns a page of a room's messages in their current state
// (edits applied, deleted ones as tombstones), always oldest first.
func (s *Service) Messages(ctx context.Context, actor store.User, roomID int64, p Page) ([]store.Message, error) {
	forward := p.Forward || p.After != 0
	if p.Before != 0 && forward {
		return nil, badRequest("give before or after, not both")
	}
	if p.Around != 0 {
		if p.Before != 0 || forward {
			return nil, badRequest("give around alone, without before or after")
		}
		return s.around(ctx, actor, roomID, p.Around, store.ClampLimit(p.Limit))
	}
	if _, err := s.member(ctx, actor, roomID); err != nil {
		return nil, err
	}
	limit := store.ClampLimit(p.Limit)
	var (
		ms  []store.Message
		err error
	)
	if forward {
		ms, err = s.st.MessagesAfter(ctx, roomID, p.After, limit)
	} else {
		ms, err = s.st.MessagesBefore(ctx, roomID, p.Before, limit)
		sort.Slice(ms, func(i, j int) bool { return ms[i].Seq < ms[j].Seq })
	}
	if err != nil {
		return nil, fmt.Errorf("chat: messages of room %d: %w", roomID, err)
	}
	return ms, nil
}

// Events returns the raw log after a seq (what a client missed), with the
// room's position.
func (s *Service) Events(ctx context.Context, actor store.User, roomID int64, after uint64, limit int) ([]protocol.Publication, hub.Position, error) {
	if _, err := s.member(ctx, actor, roomID); err != nil {
		return nil, hub.Position{}, err
	}
	pos, err := s.st.RoomPosition(ctx, roomID)
	if err != nil {
		return nil, hub.Position{}, storeErr(err, errNoRoom, "")
	}
	pubs, top, _, err := s.backend.Since(ctx, RoomChannel(roomID), pos.Epoch, min(after, pos.Seq), store.ClampLimit(limit))
	if pubs == nil {
		pubs = []protocol.Publication{}
	}
	return pubs, top, err
}

// MarkRead moves actor's read receipt in a room forward to seq and tells the
// room (ephemerally). It returns the resulting receipt.
func (s *Service) MarkRead(ctx context.Context, actor store.User, roomID int64, seq uint64) (uint64, error) {
	if _, err := s.member(ctx, actor, roomID); err != nil {
		return 0, err
	}
	got, err := s.st.SetLastRead(ctx, roomID, actor.ID, seq)
	if err != nil {
		return 0, storeErr(err, errNotMember, "")
	}
	s.signal(ctx, roomID, actor.Username, map[string]any{"type": "read", "user": actor.Username, "seq": got})
	return got, nil
}

// Typing tells a room's live subscribers that actor is typing. Nothing is
// stored.
func (s *Service) Typing(ctx context.Context, actor store.User, roomID int64) error {
	if _, err := s.member(ctx, actor, roomID); err != nil {
		return err
	}
	s.signal(ctx, roomID, actor.Username, map[string]any{"type": "typing", "user": actor.Username})
	return nil
}

// Online returns the users connected to a room right now (subscribed to
// its channel), each once, sorted.
func (s *Service) Online(ctx context.Context, actor store.User, roomID int64) ([]string, error) {
	if _, err := s.member(ctx, actor, roomID); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	out := []string{}
	for _, c := range s.hub.Presence(RoomChannel(roomID)) {
		if !seen[c.User] {
			seen[c.User] = true
			out = append(out, c.User)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Search finds live messages matching query in the rooms actor is a member
// of, or in one of them when roomID is not 0. Newest first.
func (s *Service) Search(ctx context.Context, actor store.User, query string, roomID int64, limit int) ([]store.Message, error) {
	if perr := ValidateQuery(query); perr != nil {
		return nil, perr
	}
	var rooms []int64
	if roomID != 0 {
		if _, err := s.member(ctx, actor, roomID); err != nil {
			return nil, err
		}
		rooms = []int64{roomID}
	} else {
		rs, err := s.MyRooms(ctx, actor)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			rooms = append(rooms, r.ID)
		}
	}
	if len(rooms) == 0 {
		return []store.Message{}, nil
	}
	ms, err := s.st.SearchMessages(ctx, rooms, query, store.ClampLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("chat: search: %w", err)
	}
	return ms, nil
}
