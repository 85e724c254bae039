package signal

import (
	"context"
	"encoding/json"

	"github.com/sori-dev/sori/internal/protocol"
)

// Method serves one rpc method for a connection: data is the command's raw
// JSON data, the result is encoded into the reply.
type Method func(ctx context.Context, c Conn, data json.RawMessage) (any, error)

// Methods returns the rpc methods of calls, by name: call.join, call.leave,
// call.signal, call.state, call.quality and call.status (notify.go).
func (s *Service) Methods() map[string]Method {
	return map[string]Method{
		"call.status": s.statusMethod,
		"call.join": func(ctx context.Context, c Conn, data json.RawMessage) (any, error) {
			var req JoinRequest
			if err := decode(data, &req); err != nil {
				return nil, err
			}
			return s.Join(ctx, c, req)
		},
		"call.leave": func(_ context.Context, c Conn, data json.RawMessage) (any, error) {
			var req LeaveRequest
			if err := decode(data, &req); err != nil {
				return nil, err
			}
			return struct{}{}, s.Leave(c, req)
		},
		"call.signal": func(_ context.Context, c Conn, data json.RawMessage) (any, error) {
			var req SignalRequest
			if err := decode(data, &req); err != nil {
				return nil, err
			}
			return struct{}{}, s.Signal(c, req)
		},
		"call.quality": func(_ context.Context, c Conn, data json.RawMessage) (any, error) {
			var req QualityRequest
			if err := decode(data, &req); err != nil {
				return nil, err
			}
			return struct{}{}, s.SetQuality(c, req)
		},
		"call.state": func(_ context.Context, c Conn, data json.RawMessage) (any, error) {
			var req StateRequest
			if err := decode(data, &req); err != nil {
				return nil, err
			}
			st, err := s.SetState(c, req)
			return st, err
		},
	}
}

func decode(data json.RawMessage, v any) error {
	if len(data) == 0 {
		return protocol.ErrBadRequest.WithMessage("data is required")
	}
	if err := json.Unmarshal(data, v); err != nil {
		return protocol.ErrBadRequest.WithMessage("bad data: " + err.Error())
	}
	return nil
}
