package chat

import (
	"context"
	"errors"
	"fmt"

	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/store"
)

// NewRoom describes a group room to create.
type NewRoom struct {
	Name  string
	Title string
	Topic string
	Kind  store.RoomKind // public or private
}

// CreateRoom creates a public or private room owned by actor.
func (s *Service) CreateRoom(ctx context.Context, actor store.User, nr NewRoom) (store.Room, error) {
	if perr := ValidateRoomName(nr.Name); perr != nil {
		return store.Room{}, perr
	}
	if perr := ValidateTitle(nr.Title); perr != nil {
		return store.Room{}, perr
	}
	if perr := ValidateTopic(nr.Topic); perr != nil {
		return store.Room{}, perr
	}
	if nr.Kind != store.RoomPublic && nr.Kind != store.RoomPrivate {
		return store.Room{}, badRequest(`kind must be "public" or "private" (direct rooms are opened with a user)`)
	}
	r, err := s.st.CreateRoom(ctx, store.Room{Name: nr.Name, Title: nr.Title, Topic: nr.Topic, Kind: nr.Kind, CreatedBy: actor.ID})
	if err != nil {
		return store.Room{}, storeErr(err, errNoUser, "a room with this name exists")
	}
	s.rememberRoom(r)
	return r, nil
}

// OpenDirect returns the direct room of actor and the user named peer,
// creating it when needed.
func (s *Service) OpenDirect(ctx context.Context, actor store.User, peer string) (store.Room, bool, error) {
	p, err := s.st.GetUserByName(ctx, peer)
	if err != nil {
		return store.Room{}, false, storeErr(err, errNoUser, "")
	}
	if p.ID == actor.ID {
		return store.Room{}, false, badRequest("a direct conversation needs another user")
	}
	r, created, err := s.st.GetOrCreateDirectRoom(ctx, actor.ID, p.ID)
	if err != nil {
		return store.Room{}, false, fmt.Errorf("chat: direct room: %w", err)
	}
	s.rememberRoom(r)
	if created {
		s.signal(ctx, r.ID, actor.Username, map[string]any{"type": "room_created"})
		s.notify(ctx, p.Username, actor.Username, map[string]any{"type": "dm_opened", "room": r.ID})
	}
	return r, created, nil
}

// Room returns a room actor is a member of, with actor's membership.
func (s *Service) Room(ctx context.Context, actor store.User, roomID int64) (store.Room, store.Member, error) {
	return s.roomAsMember(ctx, actor, roomID)
}

// MyRooms lists actor's rooms with unread counts.
func (s *Service) MyRooms(ctx context.Context, actor store.User) ([]store.RoomSummary, error) {
	rs, err := s.st.ListUserRooms(ctx, actor.ID)
	if err != nil {
		return nil, fmt.Errorf("chat: rooms of %s: %w", actor.Username, err)
	}
	return rs, nil
}

// PublicRooms lists the rooms anyone may join.
func (s *Service) PublicRooms(ctx context.Context) ([]store.Room, error) {
	rs, err := s.st.ListPublicRooms(ctx)
	if err != nil {
		return nil, fmt.Errorf("chat: public rooms: %w", err)
	}
	return rs, nil
}

// Join makes actor a member of a public room. Joining a room one is in
// already succeeds and changes nothing. Private rooms are joined by
// invitation only, and answer as if they did not exist.
func (s *Service) Join(ctx context.Context, actor store.User, roomID int64) (store.Member, error) {
	r, err := s.st.GetRoom(ctx, roomID)
	if err != nil {
		return store.Member{}, storeErr(err, errNoRoom, "")
	}
	if r.Kind != store.RoomPublic {
		if m, err := s.member(ctx, actor, roomID); err == nil {
			return m, nil
		}
		return store.Member{}, errNoRoom
	}
	m, err := s.st.AddMember(ctx, roomID, actor.ID, store.RoleMember)
	if errors.Is(err, store.ErrConflict) {
		return s.member(ctx, actor, roomID)
	}
	if err != nil {
		return store.Member{}, storeErr(err, errNoRoom, "")
	}
	s.signal(ctx, roomID, actor.Username, map[string]any{"type": "member_joined", "member": actor.Username})
	return m, nil
}

// Leave removes actor from a room. The last owner cannot leave while others
// remain (make another member owner first): the store decides that in the
// same statement as the removal, so two owners leaving at once cannot both
// succeed. Nobody leaves a direct conversation.
func (s *Service) Leave(ctx context.Context, actor store.User, roomID int64) error {
	r, _, err := s.roomAsMember(ctx, actor, roomID)
	if err != nil {
		return err
	}
	if r.Kind == store.RoomDirect {
		return errDirectRooms
	}
	if err := s.st.RemoveMember(ctx, roomID, actor.ID); err != nil {
		return storeErr(err, errNotMember, "you are the last owner: make another member owner first")
	}
	s.dropSubscriptions(actor.Username, roomID)
	s.memberRemoved(roomID, actor.Username, RemovedLeft)
	s.signal(ctx, roomID, actor.Username, map[string]any{"type": "member_left", "member": actor.Username})
	return nil
}

// Invite adds the user named invitee to a room. In a public room any member
// may invite; in a private room only admins and owners.
func (s *Service) Invite(ctx context.Context, actor store.User, roomID int64, invitee string) (store.Member, error) {
	r, m, err := s.roomAsMember(ctx, actor, roomID)
	if err != nil {
		return store.Member{}, err
	}
	if r.Kind == store.RoomDirect {
		return store.Member{}, errDirectRooms
	}
	if r.Kind == store.RoomPrivate && rank(m.Role) < rank(store.RoleAdmin) {
		return store.Member{}, errRoleTooLow
	}
	u, err := s.st.GetUserByName(ctx, invitee)
	if err != nil {
		return store.Member{}, storeErr(err, errNoUser, "")
	}
	nm, err := s.st.AddMember(ctx, roomID, u.ID, store.RoleMember)
	if err != nil {
		return store.Member{}, storeErr(err, errNoUser, "already a member")
	}
	s.signal(ctx, roomID, actor.Username, map[string]any{"type": "member_joined", "member": u.Username, "by": actor.Username})
	s.notify(ctx, u.Username, actor.Username, map[string]any{"type": "invited", "room": roomID, "role": nm.Role})
	if s.cfg.Notifier != nil && u.ID != actor.ID {
		s.cfg.Notifier.Notify(ctx, Notice{UserID: u.ID, User: u.Username, Type: "invited", RoomID: roomID, By: actor.Username})
	}
	return nm, nil
}

// memberByName returns the membership of the user named name.
func (s *Service) memberByName(ctx context.Context, roomID int64, name string) (store.User, store.Member, error) {
	u, err := s.st.GetUserByName(ctx, name)
	if err != nil {
		return store.User{}, store.Member{}, storeErr(err, errNoUser, "")
	}
	m, err := s.st.GetMember(ctx, roomID, u.ID)
	if err != nil {
		return store.User{}, store.Member{}, storeErr(err, protocol.ErrNotFound.WithMessage("not a member of this room"), "")
	}
	return u, m, nil
}

// Kick removes another member. Admins kick members; owners kick admins and
// members. The kicked user's live subscriptions end at once.
func (s *Service) Kick(ctx context.Context, actor store.User, roomID int64, name string) error {
	r, m, err := s.roomAsMember(ctx, actor, roomID)
	if err != nil {
		return err
	}
	if r.Kind == store.RoomDirect {
		return errDirectRooms
	}
	u, tm, err := s.memberByName(ctx, roomID, name)
	if err != nil {
		return err
	}
	if u.ID == actor.ID {
		return badRequest("use leave to leave a room")
	}
	if rank(m.Role) < rank(store.RoleAdmin) || rank(m.Role) <= rank(tm.Role) {
		return errRoleTooLow
	}
	if err := s.st.RemoveMember(ctx, roomID, u.ID); err != nil {
		return storeErr(err, errNotMember, "")
	}
	s.dropSubscriptions(u.Username, roomID)
	s.memberRemoved(roomID, u.Username, RemovedKicked)
	s.signal(ctx, roomID, actor.Username, map[string]any{"type": "member_kicked", "member": u.Username, "by": actor.Username})
	s.notify(ctx, u.Username, actor.Username, map[string]any{"type": "kicked", "room": roomID})
	return nil
}

// SetRole changes another member's role; only owners may, and an owner
// cannot change their own role (that could leave the room without one).
func (s *Service) SetRole(ctx context.Context, actor store.User, roomID int64, name string, role store.Role) error {
	if !role.Valid() {
		return badRequest(`role must be "owner", "admin" or "member"`)
	}
	r, m, err := s.roomAsMember(ctx, actor, roomID)
	if err != nil {
		return err
	}
	if r.Kind == store.RoomDirect {
		return errDirectRooms
	}
	if m.Role != store.RoleOwner {
		return errRoleTooLow
	}
	u, _, err := s.memberByName(ctx, roomID, name)
	if err != nil {
		return err
	}
	if u.ID == actor.ID {
		return protocol.ErrConflict.WithMessage("make another member owner, and let them change your role")
	}
	if err := s.st.SetRole(ctx, roomID, u.ID, role); err != nil {
		return storeErr(err, errNotMember, "the room would have no owner left: make another member owner first")
	}
	s.signal(ctx, roomID, actor.Username, map[string]any{"type": "role_changed", "member": u.Username, "role": role, "by": actor.Username})
	s.notify(ctx, u.Username, actor.Username, map[string]any{"type": "role_changed", "room": roomID, "role": role})
	return nil
}

// SetTopic changes a room's topic: admins and owners of group rooms, either
// member of a direct conversation.
func (s *Service) SetTopic(ctx context.Context, actor store.User, roomID int64, topic string) error {
	if perr := ValidateTopic(topic); perr != nil {
		return perr
	}
	r, m, err := s.roomAsMember(ctx, actor, roomID)
	if err != nil {
		return err
	}
	if r.Kind != store.RoomDirect && rank(m.Role) < rank(store.RoleAdmin) {
		return errRoleTooLow
	}
	if err := s.st.SetTopic(ctx, roomID, topic); err != nil {
		return storeErr(err, errNoRoom, "")
	}
	s.signal(ctx, roomID, actor.Username, map[string]any{"type": "topic_changed", "topic": topic, "by": actor.Username})
	return nil
}

// MemberInfo is a member with their username and profile (User has no
// password hash).
type MemberInfo struct {
	store.Member
	Username string
	User     store.User
}

// Members lists a room's members, for members only, with their profiles
// read in one store call.
func (s *Service) Members(ctx context.Context, actor store.User, roomID int64) ([]MemberInfo, error) {
	if _, err := s.member(ctx, actor, roomID); err != nil {
		return nil, err
	}
	ms, err := s.st.ListMembers(ctx, roomID)
	if err != nil {
		return nil, fmt.Errorf("chat: members of room %d: %w", roomID, err)
	}
	ids := make([]int64, len(ms))
	for i, m := range ms {
		ids[i] = m.UserID
	}
	users, err := s.Users(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]MemberInfo, 0, len(ms))
	for _, m := range ms {
		u, ok := users[m.UserID]
		if !ok {
			return nil, fmt.Errorf("chat: member %d of room %d has no user", m.UserID, roomID)
		}
		out = append(out, MemberInfo{Member: m, Username: u.Username, User: u})
	}
	return out, nil
}

// Users returns the users with the given ids (duplicates allowed) by id,
// without password hashes: the profiles shown beside members and authors.
func (s *Service) Users(ctx context.Context, ids []int64) (map[int64]store.User, error) {
	seen := make(map[int64]bool, len(ids))
	uniq := make([]int64, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			uniq = append(uniq, id)
		}
	}
	us, err := s.st.GetUsers(ctx, uniq)
	if err != nil {
		return nil, fmt.Errorf("chat: users: %w", err)
	}
	out := make(map[int64]store.User, len(us))
	for _, u := range us {
		u.PasswordHash = ""
		out[u.ID] = u
	}
	return out, nil
}

// UserName returns the username of a user id (for rendering).
func (s *Service) UserName(ctx context.Context, id int64) (string, error) { return s.userName(ctx, id) }

// UserNames returns the usernames of ids, in order (nil for none).
func (s *Service) UserNames(ctx context.Context, ids []int64) ([]string, error) {
	return s.userNames(ctx, ids)
}
