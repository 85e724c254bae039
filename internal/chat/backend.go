package chat

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	"github.com/sori-dev/sori/internal/hub"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/store"
)

// EventData is the data of a publication on a room channel: one event of
// the room's log. Clients publish the same shape (without user), and the
// server fills in user.
type EventData struct {
	Type    string `json:"type"`               // message, edit, delete, reaction_add, reaction_remove, pin, unpin
	User    string `json:"user,omitempty"`     // author or actor; set by the server
	Text    string `json:"text,omitempty"`     // message, edit
	ReplyTo uint64 `json:"reply_to,omitempty"` // message
	Target  uint64 `json:"target,omitempty"`   // edit, delete, reaction_*, pin, unpin: seq of the message
	Emoji   string `json:"emoji,omitempty"`    // reaction_*
	// Message only. ClientID is the author's idempotency key (see
	// docs/protocol.md, "Idempotent publish"); Thread the root seq of the
	// thread replied in. Mentions and MentionRoom are set by the server.
	ClientID    string   `json:"client_id,omitempty"`
	Thread      uint64   `json:"thread,omitempty"`
	Mentions    []string `json:"mentions,omitempty"`
	MentionRoom bool     `json:"mention_room,omitempty"`
}

func jsonMarshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("chat: encode: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// Backend keeps the "chat" namespace's history in the store: appending a
// publication to "chat:<room>" appends an event to the room's log, whose
// seq becomes the publication's offset and whose room epoch is the channel
// epoch. A resuming client is therefore served from the store, across
// reconnects and server restarts.
//
// The sibling channels "chat:<room>#live" carry ephemeral signals (typing,
// read receipts, membership notices): they get offsets from an in-memory
// counter and keep no history, so nothing there is ever stored.
//
// It is safe for concurrent use, also by concurrent Appends to one channel:
// the store orders a room's events and gives each its seq.
type Backend struct {
	s *Service

	mu        sync.Mutex
	liveEpoch string
	live      map[string]uint64 // live channel -> last offset; at most maxLive entries
	maxLive   int
}

// defaultMaxLive bounds the live channels whose offsets the Backend counts
// (about 100 bytes each). Past it the counters start again under a new
// epoch, which tells subscribers that the offsets restarted: live channels
// keep no history, so there is nothing to recover either way.
const defaultMaxLive = 1 << 16

func newBackend(s *Service) *Backend {
	return &Backend{s: s, liveEpoch: newLiveEpoch(), live: map[string]uint64{}, maxLive: defaultMaxLive}
}

func newLiveEpoch() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// serverSignal marks the context of a publication the chat service itself
// makes on a live channel (see Service.signal): Append refuses every other,
// whatever publish grant the publisher's token carries, so that nobody can
// forge a member_kicked or typing notice.
type serverSignal struct{}

var errLiveServerOnly = protocol.ErrPermissionDenied.WithMessage(`live signals are sent by the server; use rpc "chat.typing"`)

var _ hub.Backend = (*Backend)(nil)

// errNoRoomChannel answers subscribe and publish on a "chat:" channel that
// names no room, like a room one is not a member of (104).
var errNoRoomChannel = protocol.ErrPermissionDenied.WithMessage("not a chat room you are a member of")

var errBadChannel = protocol.ErrBadChannel.WithMessage(`chat channels are "chat:<room id>" and "chat:<room id>#live"`)

// Append implements hub.Backend. It validates the event (shape, text,
// permissions) and returns only once the store has committed it, so what
// the hub then acknowledges and fans out is durable.
func (b *Backend) Append(ctx context.Context, channel string, pub protocol.Publication) (protocol.Publication, string, error) {
	out, epoch, err := b.append(ctx, channel, pub)
	return out, epoch, storeDown(err)
}

func (b *Backend) append(ctx context.Context, channel string, pub protocol.Publication) (protocol.Publication, string, error) {
	roomID, live, ok := parseChannel(channel)
	if !ok {
		return pub, "", errBadChannel
	}
	if live {
		if ctx.Value(serverSignal{}) == nil {
			return pub, "", errLiveServerOnly
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.live[channel]; !ok && len(b.live) >= b.maxLive {
			clear(b.live)
			b.liveEpoch = newLiveEpoch()
		}
		b.live[channel]++
		pub.Offset = b.live[channel]
		return pub, b.liveEpoch, nil
	}
	// The store's part, checks and commit, within AppendTimeout and the
	// caller's deadline (the hub passes it). A commit that lands after
	// it is delivered by the hub's repair, or when the client's retry
	// comes back as a duplicate.
	ctx, cancel := context.WithTimeout(ctx, b.s.cfg.AppendTimeout)
	defer cancel()
	actor, err := b.s.resolve(ctx, pub.User)
	if err != nil {
		return pub, "", err
	}
	var in EventData
	if err := json.Unmarshal(pub.Data, &in); err != nil {
		return pub, "", protocol.ErrBadData.WithMessage(`chat data must be an object such as {"type":"message","text":"hi"}`)
	}
	ev, mentions, err := b.s.checkEvent(ctx, actor, roomID, in)
	if err != nil {
		return pub, "", err
	}
	epoch, err := b.s.roomEpoch(ctx, roomID)
	if err != nil {
		return pub, "", err
	}
	// Everything that can fail happens before the commit: once the store
	// has the event, Append must report success, or the client would retry
	// a message that is already in the room.
	stored, err := b.s.st.AppendEvent(ctx, roomID, ev)
	if err != nil {
		return pub, "", storeErr(err, errNoMessage, "the message was deleted, the reaction or pin is already there")
	}
	if stored.Duplicate {
		// A retry of a message already in the room: answer with it and
		// publish nothing. Its mentions are those it was stored with.
		if mentions, err = b.s.userNames(ctx, stored.Mentions); err != nil {
			return pub, "", err
		}
		return render(stored, actor.Username, mentions), epoch, hub.ErrDuplicate
	}
	b.s.afterMessage(ctx, stored, actor.Username)
	return render(stored, actor.Username, mentions), epoch, nil
}

// Since implements hub.Backend.
func (b *Backend) Since(ctx context.Context, channel, epoch string, offset uint64, limit int) ([]protocol.Publication, hub.Position, bool, error) {
	pubs, top, ok, err := b.since(ctx, channel, epoch, offset, limit)
	return pubs, top, ok, storeDown(err)
}

func (b *Backend) since(ctx context.Context, channel, epoch string, offset uint64, limit int) ([]protocol.Publication, hub.Position, bool, error) {
	roomID, live, ok := parseChannel(channel)
	if !ok {
		return nil, hub.Position{}, false, errBadChannel
	}
	if live {
		top := b.liveTop(channel)
		return nil, top, epoch == top.Epoch && offset == top.Offset, nil
	}
	pos, err := b.s.st.RoomPosition(ctx, roomID)
	if err != nil {
		return nil, hub.Position{}, false, storeErr(err, errNoRoom, "")
	}
	top := hub.Position{Epoch: pos.Epoch, Offset: pos.Seq}
	if epoch != pos.Epoch || offset > pos.Seq {
		return nil, top, false, nil
	}
	// The hub asks for one more than it will send, to learn whether the gap
	// is too large; the store caps each read at store.MaxLimit, so page.
	var pubs []protocol.Publication
	for after := offset; len(pubs) < limit && after < pos.Seq; {
		evs, err := b.s.st.EventsAfter(ctx, roomID, after, min(limit-len(pubs), store.MaxLimit))
		if err != nil {
			return nil, top, false, fmt.Errorf("chat: events of room %d after %d: %w", roomID, after, err)
		}
		if len(evs) == 0 {
			break
		}
		for _, ev := range evs {
			p, err := b.s.publication(ctx, ev)
			if err != nil {
				return nil, top, false, err
			}
			pubs = append(pubs, p)
		}
		after = evs[len(evs)-1].Seq
	}
	return pubs, top, true, nil
}

// Last implements hub.Backend. limit <= 0 asks for the position only.
func (b *Backend) Last(ctx context.Context, channel string, limit int) ([]protocol.Publication, hub.Position, error) {
	pubs, top, err := b.last(ctx, channel, limit)
	return pubs, top, storeDown(err)
}

func (b *Backend) last(ctx context.Context, channel string, limit int) ([]protocol.Publication, hub.Position, error) {
	roomID, live, ok := parseChannel(channel)
	if !ok {
		return nil, hub.Position{}, errBadChannel
	}
	if live {
		return nil, b.liveTop(channel), nil
	}
	pos, err := b.s.st.RoomPosition(ctx, roomID)
	if err != nil {
		return nil, hub.Position{}, storeErr(err, errNoRoom, "")
	}
	top := hub.Position{Epoch: pos.Epoch, Offset: pos.Seq}
	if limit <= 0 {
		return nil, top, nil
	}
	evs, err := b.s.st.LatestEvents(ctx, roomID, limit)
	if err != nil {
		return nil, top, fmt.Errorf("chat: latest events of room %d: %w", roomID, err)
	}
	pubs := make([]protocol.Publication, 0, len(evs))
	for _, ev := range evs {
		p, err := b.s.publication(ctx, ev)
		if err != nil {
			return nil, top, err
		}
		pubs = append(pubs, p)
	}
	return pubs, top, nil
}

// liveTop returns a live channel's position without counting it: reading
// creates no entry.
func (b *Backend) liveTop(channel string) hub.Position {
	b.mu.Lock()
	defer b.mu.Unlock()
	return hub.Position{Epoch: b.liveEpoch, Offset: b.live[channel]}
}

// publication renders a stored event as the channel publication clients see.
func (s *Service) publication(ctx context.Context, ev store.Event) (protocol.Publication, error) {
	name, err := s.userName(ctx, ev.UserID)
	if err != nil {
		return protocol.Publication{}, err
	}
	mentions, err := s.userNames(ctx, ev.Mentions)
	if err != nil {
		return protocol.Publication{}, err
	}
	return render(ev, name, mentions), nil
}

// render is the publication of ev by the user named name, which mentions
// the users named mentions. It cannot fail: EventData holds only strings,
// numbers and booleans, which always encode.
func render(ev store.Event, name string, mentions []string) protocol.Publication {
	data, _ := jsonMarshal(EventData{Type: string(ev.Kind), User: name, Text: ev.Body, ReplyTo: ev.ReplyTo, Target: ev.Target, Emoji: ev.Emoji,
		ClientID: ev.ClientID, Thread: ev.Thread, Mentions: mentions, MentionRoom: ev.MentionRoom})
	return protocol.Publication{Offset: ev.Seq, Data: data, User: name, Time: ev.CreatedAt.UnixMilli()}
}

// checkEvent validates an event a user wants to append and checks that the
// user may: members post, react and pin; authors edit; authors and room
// admins delete. For a message it also finds the members the text mentions,
// and returns their names.
func (s *Service) checkEvent(ctx context.Context, actor store.User, roomID int64, in EventData) (store.Event, []string, error) {
	ev := store.Event{Kind: store.EventKind(in.Type), UserID: actor.ID}
	switch ev.Kind {
	case store.EventMessage:
		if perr := ValidateMessageText(in.Text); perr != nil {
			return ev, nil, perr
		}
		if perr := ValidateClientID(in.ClientID); perr != nil {
			return ev, nil, perr
		}
		ev.Body, ev.ReplyTo, ev.ClientID, ev.Thread = in.Text, in.ReplyTo, in.ClientID, in.Thread
	case store.EventEdit:
		if perr := ValidateMessageText(in.Text); perr != nil {
			return ev, nil, perr
		}
		ev.Body, ev.Target = in.Text, in.Target
	case store.EventDelete, store.EventPin, store.EventUnpin:
		ev.Target = in.Target
	case store.EventReactionAdd, store.EventReactionRemove:
		if perr := ValidateEmoji(in.Emoji); perr != nil {
			return ev, nil, perr
		}
		ev.Target, ev.Emoji = in.Target, in.Emoji
	default:
		return ev, nil, protocol.ErrBadData.WithMessage(`type must be "message", "edit", "delete", "reaction_add", "reaction_remove", "pin" or "unpin"`)
	}
	if ev.Kind != store.EventMessage && ev.Target == 0 {
		return ev, nil, badRequest("target (the seq of a message) is required")
	}
	role, err := s.memberRole(ctx, actor, roomID)
	if err != nil {
		return ev, nil, err
	}
	var mentions []string
	switch ev.Kind {
	case store.EventMessage:
		if ev.ReplyTo != 0 {
			if _, err := s.st.GetMessage(ctx, roomID, ev.ReplyTo); err != nil {
				return ev, nil, storeErr(err, protocol.ErrNotFound.WithMessage("reply_to names no message of this room"), "")
			}
		}
		if ev.Thread != 0 {
			root, err := s.st.GetMessage(ctx, roomID, ev.Thread)
			if err != nil {
				return ev, nil, storeErr(err, protocol.ErrNotFound.WithMessage("thread names no message of this room"), "")
			}
			if root.Thread != 0 {
				return ev, nil, badRequest("thread must be the seq of a root message, not of a reply")
			}
			if root.Deleted {
				return ev, nil, protocol.ErrConflict.WithMessage("the thread's root message was deleted")
			}
		}
		if ev.Mentions, mentions, ev.MentionRoom, err = s.mentionsOf(ctx, roomID, role, ev.Body); err != nil {
			return ev, nil, err
		}
	case store.EventEdit, store.EventDelete:
		msg, err := s.st.GetMessage(ctx, roomID, ev.Target)
		if err != nil {
			return ev, nil, storeErr(err, errNoMessage, "")
		}
		if msg.Deleted {
			return ev, nil, protocol.ErrConflict.WithMessage("the message was deleted")
		}
		mayModerate := ev.Kind == store.EventDelete && rank(role) >= rank(store.RoleAdmin)
		if msg.AuthorID != actor.ID && !mayModerate {
			return ev, nil, protocol.ErrPermissionDenied.WithMessage("only the author may change this message")
		}
	case store.EventPin:
		pins, err := s.st.ListPins(ctx, roomID)
		if err != nil {
			return ev, nil, storeErr(err, errNoRoom, "")
		}
		if len(pins) >= MaxPins {
			return ev, nil, protocol.ErrConflict.WithMessage("a room holds at most " + strconv.Itoa(MaxPins) + " pins; unpin one first")
		}
	}
	return ev, mentions, nil
}

// Authorizer decides who may subscribe and publish to chat channels: room
// members only, for both the event log and the live channel. Clients may
// not publish to the live channel (its signals come from the server, with
// the user set by the server); publishing to the room channel is checked in
// full by Backend.Append.
type Authorizer struct{ s *Service }

// CanSubscribe implements session.Authorizer.
func (a *Authorizer) CanSubscribe(ctx context.Context, user, channel string) error {
	return storeDown(a.canSubscribe(ctx, user, channel))
}

func (a *Authorizer) canSubscribe(ctx context.Context, user, channel string) error {
	roomID, _, ok := parseChannel(channel)
	if !ok {
		return errNoRoomChannel
	}
	actor, err := a.s.resolve(ctx, user)
	if err != nil {
		return err
	}
	_, err = a.s.memberRole(ctx, actor, roomID)
	return err
}

// CanPublish implements session.Authorizer.
func (a *Authorizer) CanPublish(ctx context.Context, user, channel string) error {
	return storeDown(a.canPublish(ctx, user, channel))
}

func (a *Authorizer) canPublish(ctx context.Context, user, channel string) error {
	_, live, ok := parseChannel(channel)
	if !ok {
		return errNoRoomChannel
	}
	if live {
		return protocol.ErrPermissionDenied.WithMessage(`live signals are sent by the server; use rpc "chat.typing"`)
	}
	if user == "" {
		return protocol.ErrPermissionDenied.WithMessage("chat needs a logged-in user")
	}
	return nil
}
