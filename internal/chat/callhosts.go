package chat

import (
	"context"
	"errors"
	"strconv"

	"github.com/sori-dev/sori/internal/store"
)

// IsRoomAdmin tells whether the user named subject is an owner or admin of
// room (a chat room id in decimal): the hosts of a broadcast call and the
// managers of a room's stream key. Not a member, or no such room: false.
func (s *Service) IsRoomAdmin(ctx context.Context, subject, room string) (bool, error) {
	id, err := strconv.ParseInt(room, 10, 64)
	if err != nil || id <= 0 {
		return false, nil
	}
	actor, err := s.resolve(ctx, subject)
	if err != nil {
		return false, nil // not a chat user
	}
	role, err := s.memberRole(ctx, actor, id)
	if errors.Is(err, errNotMember) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return rank(role) >= rank(store.RoleAdmin), nil
}
