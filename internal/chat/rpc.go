package chat

import (
	"context"
	"encoding/json"

	"github.com/sori-dev/sori/internal/protocol"
)

// Method serves one rpc method for a connected user: subject is the
// connection token's subject, data the command's raw JSON data; the result
// is encoded into the reply.
type Method func(ctx context.Context, subject string, data json.RawMessage) (any, error)

// roomArgs is the data of the chat rpc methods.
type roomArgs struct {
	Room int64  `json:"room"`
	Seq  uint64 `json:"seq"`
}

func decodeRoomArgs(data json.RawMessage) (roomArgs, error) {
	var a roomArgs
	if err := json.Unmarshal(data, &a); err != nil || a.Room <= 0 {
		return a, protocol.ErrBadRequest.WithMessage(`data must be {"room":<room id>}`)
	}
	return a, nil
}

// Methods returns the rpc methods of chat, by name: "chat.typing"
// {"room":N} and "chat.read" {"room":N,"seq":S}, the ephemeral actions a
// client sends over its connection (docs/api.md, "Real time").
func (s *Service) Methods() map[string]Method {
	return map[string]Method{
		"chat.typing": func(ctx context.Context, subject string, data json.RawMessage) (any, error) {
			a, err := decodeRoomArgs(data)
			if err != nil {
				return nil, err
			}
			u, err := s.resolve(ctx, subject)
			if err != nil {
				return nil, err
			}
			return struct{}{}, s.Typing(ctx, u, a.Room)
		},
		"chat.read": func(ctx context.Context, subject string, data json.RawMessage) (any, error) {
			a, err := decodeRoomArgs(data)
			if err != nil {
				return nil, err
			}
			u, err := s.resolve(ctx, subject)
			if err != nil {
				return nil, err
			}
			seq, err := s.MarkRead(ctx, u, a.Room, a.Seq)
			if err != nil {
				return nil, err
			}
			return map[string]uint64{"last_read_seq": seq}, nil
		},
	}
}
