package chat

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/sori-dev/sori/internal/store"
)

// Mentions and notification levels (issue 14, docs/api.md "Mentions").

// MaxMentions bounds the names of one message that are looked up: a text
// naming more mentions only the first MaxMentions distinct names.
const MaxMentions = 20

// roomMention is the word that mentions every member (honoured from room
// admins and owners only).
const roomMention = "room"

// parseMentions returns the distinct names written as "@name" in text, in
// order and folded, at most MaxMentions of them, and whether "@room" is
// among them (it is not returned as a name). An '@' counts only at the start
// or after a character that cannot be part of a name or an e-mail address,
// so "bob@example.com" mentions nobody; a name's trailing '.', '-' or '_' is
// punctuation ("thanks @bob.").
func parseMentions(text string) (names []string, room bool) {
	seen := map[string]bool{}
	for i := 0; i < len(text); i++ {
		if text[i] != '@' || (i > 0 && isNameByte(text[i-1])) || (i > 0 && text[i-1] == '@') {
			continue
		}
		j := i + 1
		for j < len(text) && isNameByte(text[j]) {
			j++
		}
		name := strings.TrimRight(text[i+1:j], ".-_")
		i = j - 1
		if len(name) < 2 || len(name) > 32 || !isAlnum(name[0]) {
			continue
		}
		key := store.FoldName(name)
		if key == roomMention {
			room = true
			continue
		}
		if !seen[key] && len(names) < MaxMentions {
			seen[key] = true
			names = append(names, key)
		}
	}
	return names, room
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// isNameByte reports whether c may appear in a username (see
// accounts.ValidateUsername).
func isNameByte(c byte) bool { return isAlnum(c) || c == '_' || c == '-' || c == '.' }

// mentionsOf resolves the names a message mentions to the room's members
// (other names are plain text) and honours @room from admins and owners.
func (s *Service) mentionsOf(ctx context.Context, roomID int64, role store.Role, text string) (ids []int64, names []string, room bool, err error) {
	candidates, room := parseMentions(text)
	room = room && rank(role) >= rank(store.RoleAdmin)
	for _, n := range candidates {
		u, err := s.st.GetUserByName(ctx, n)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, false, err
		}
		if _, err := s.memberRole(ctx, u, roomID); err != nil {
			if errors.Is(err, errNotMember) || err == errNotMember {
				continue
			}
			return nil, nil, false, err
		}
		s.rememberUser(u)
		ids, names = append(ids, u.ID), append(names, u.Username)
	}
	return ids, names, room, nil
}

// names returns the usernames of ids, in order.
func (s *Service) userNames(ctx context.Context, ids []int64) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		n, err := s.userName(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// afterMessage tells the people a committed message concerns: a personal
// "mention" event to each member it mentions (by name, or all of them for
// @room) whose level for the room is not "none", and the Notifier, if any,
// of mentions and direct messages. Failures are logged: the message stands.
func (s *Service) afterMessage(ctx context.Context, ev store.Event, author string) {
	if ev.Kind != store.EventMessage || ev.Duplicate {
		return
	}
	direct := false
	if s.cfg.Notifier != nil {
		kind, err := s.roomKind(ctx, ev.RoomID)
		direct = err == nil && kind == store.RoomDirect
	}
	if len(ev.Mentions) == 0 && !ev.MentionRoom && !direct {
		return
	}
	targets := ev.Mentions
	var levels map[int64]store.NotifyLevel
	if ev.MentionRoom || direct {
		members, err := s.st.ListMembers(ctx, ev.RoomID)
		if err != nil {
			s.log.Warn("chat mention notices skipped", "room", ev.RoomID, "err", err)
			return
		}
		targets = make([]int64, 0, len(members))
		levels = make(map[int64]store.NotifyLevel, len(members))
		for _, m := range members {
			targets = append(targets, m.UserID)
			levels[m.UserID] = m.Notify
		}
	}
	s.tell(ctx, ev, author, targets, levels, direct)
}

// tell sends the notices of afterMessage to targets; levels, when known,
// holds each member's level (else it is read per target).
func (s *Service) tell(ctx context.Context, ev store.Event, author string, targets []int64, levels map[int64]store.NotifyLevel, direct bool) {
	for _, uid := range targets {
		if uid == ev.UserID {
			continue
		}
		level, ok := levels[uid]
		if !ok {
			m, err := s.st.GetMember(ctx, ev.RoomID, uid)
			if err != nil {
				continue // left the room meanwhile
			}
			level = m.Notify
		}
		if level == store.NotifyNone {
			continue
		}
		name, err := s.userName(ctx, uid)
		if err != nil {
			continue
		}
		// Named, or @room: a mention event; in a direct room the rest is
		// "dm" for the Notifier only (the message itself is on the room's
		// channel).
		mentioned := ev.MentionRoom || slices.Contains(ev.Mentions, uid)
		if mentioned {
			s.notify(ctx, name, author, map[string]any{"type": "mention", "room": ev.RoomID, "seq": ev.Seq})
		}
		if s.cfg.Notifier != nil {
			kind := "mention"
			if !mentioned {
				kind = "dm"
			}
			s.cfg.Notifier.Notify(ctx, Notice{UserID: uid, User: name, Type: kind, RoomID: ev.RoomID, Seq: ev.Seq, By: author, Text: ev.Body})
		}
	}
}

// Notice is what a Notifier is told: something that concerns a user who
// may not be looking (a mention, a direct message, an invitation).
type Notice struct {
	UserID int64
	User   string
	Type   string // "mention", "dm" or "invited"
	RoomID int64
	Seq    uint64 // the message's seq; 0 for an invitation
	By     string
	Text   string // the message's text; empty for an invitation
}

// Notifier hears of notices after their cause was committed, for a member
// whose level for the room is not "none" (Web Push: internal/push). Notify
// must not block for long: it runs on the write path.
type Notifier interface {
	Notify(ctx context.Context, n Notice)
}

// SetNotify sets actor's notification level for a room.
func (s *Service) SetNotify(ctx context.Context, actor store.User, roomID int64, level store.NotifyLevel) error {
	if !level.Valid() {
		return badRequest(`level must be "all", "mentions" or "none"`)
	}
	if _, err := s.member(ctx, actor, roomID); err != nil {
		return err
	}
	return storeErr(s.st.SetNotify(ctx, roomID, actor.ID, level), errNotMember, "")
}
