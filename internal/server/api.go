package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/sori-dev/sori/internal/auth"
	"github.com/sori-dev/sori/internal/hub"
	"github.com/sori-dev/sori/internal/protocol"
)

// The server API lets a backend (a trading engine pushing ticks, an app
// server kicking a user) act on channels over plain HTTP. Every call is a
// POST with a JSON body, authorized by an API key in
// "Authorization: apikey <key>"; errors are JSON with a numbered code.

const maxAPIBody = 1 << 20

func (s *Server) apiRoutes() {
	s.mux.Handle("POST /api/publish", s.apiKey(s.apiPublish))
	s.mux.Handle("POST /api/broadcast", s.apiKey(s.apiBroadcast))
	s.mux.Handle("POST /api/history", s.apiKey(s.apiHistory))
	s.mux.Handle("POST /api/presence", s.apiKey(s.apiPresence))
	s.mux.Handle("POST /api/disconnect", s.apiKey(s.apiDisconnect))
	s.mux.Handle("POST /api/unsubscribe", s.apiKey(s.apiUnsubscribe))
	s.mux.Handle("POST /api/token", s.apiKey(s.apiToken))
}

// apiError is the JSON error body of every API failure.
type apiError struct {
	Error *protocol.Error `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, e *protocol.Error) {
	writeJSON(w, status, apiError{Error: e})
}

// apiKey wraps an API handler: key check, body size limit, JSON decoding of
// the request into a fresh value, and protocol-error mapping.
func (s *Server) apiKey(h func(r *http.Request, body []byte) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := ""
		if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "apikey ") {
			key = strings.TrimSpace(a[7:])
		}
		if !s.apiKeys.Valid(key) {
			w.Header().Set("WWW-Authenticate", "apikey")
			writeError(w, http.StatusUnauthorized, protocol.ErrPermissionDenied.WithMessage("missing or wrong API key"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
		var raw json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeError(w, http.StatusRequestEntityTooLarge, protocol.ErrMessageTooLarge)
				return
			}
			writeError(w, http.StatusBadRequest, protocol.ErrBadRequest.WithMessage("body must be a JSON object"))
			return
		}
		res, err := h(r, raw)
		if err != nil {
			var perr *protocol.Error
			if !errors.As(err, &perr) {
				s.log.Error("api call failed", "path", r.URL.Path, "err", err)
				writeError(w, http.StatusInternalServerError, protocol.ErrInternal)
				return
			}
			writeError(w, statusOf(perr), perr)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
}

func statusOf(e *protocol.Error) int {
	switch e.Code {
	case protocol.ErrPermissionDenied.Code:
		return http.StatusForbidden
	case protocol.ErrMessageTooLarge.Code:
		return http.StatusRequestEntityTooLarge
	case protocol.ErrUnavailable.Code:
		return http.StatusConflict
	case protocol.ErrInternal.Code:
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return protocol.ErrBadRequest.WithMessage("malformed request: " + err.Error())
	}
	return nil
}

// publishData validates a publication coming through the API.
func (s *Server) publishData(channel string, data json.RawMessage) error {
	if err := protocol.ValidateChannel(channel); err != nil {
		return err
	}
	ns, err := s.hub.NamespaceOf(channel)
	if err != nil {
		return protocol.ErrBadChannel.WithMessage("unknown namespace " + protocol.Namespace(channel))
	}
	max := ns.MaxMessageSize
	if max == 0 {
		max = s.cfg.MaxMessageSize
	}
	if len(data) == 0 {
		return protocol.ErrBadData.WithMessage("data is required")
	}
	if len(data) > max {
		return protocol.ErrMessageTooLarge
	}
	return nil
}

type publishRequest struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

func (s *Server) apiPublish(r *http.Request, body []byte) (any, error) {
	var req publishRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := s.publishData(req.Channel, req.Data); err != nil {
		return nil, err
	}
	pos, err := s.hub.Publish(r.Context(), req.Channel, req.Data, "")
	if err != nil {
		return nil, err
	}
	return pos, nil
}

type broadcastRequest struct {
	Channels []string        `json:"channels"`
	Data     json.RawMessage `json:"data"`
}

type broadcastResult struct {
	Channel string          `json:"channel"`
	Epoch   string          `json:"epoch,omitempty"`
	Offset  uint64          `json:"offset,omitempty"`
	Error   *protocol.Error `json:"error,omitempty"`
}

func (s *Server) apiBroadcast(r *http.Request, body []byte) (any, error) {
	var req broadcastRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if len(req.Channels) == 0 || len(req.Channels) > 1000 {
		return nil, protocol.ErrBadRequest.WithMessage("channels must list 1 to 1000 channels")
	}
	out := make([]broadcastResult, 0, len(req.Channels))
	for _, ch := range req.Channels {
		res := broadcastResult{Channel: ch}
		if err := s.publishData(ch, req.Data); err != nil {
			res.Error = asProtocolError(err)
		} else if pos, err := s.hub.Publish(r.Context(), ch, req.Data, ""); err != nil {
			s.log.Error("broadcast publish failed", "channel", ch, "err", err)
			res.Error = protocol.ErrInternal
		} else {
			res.Epoch, res.Offset = pos.Epoch, pos.Offset
		}
		out = append(out, res)
	}
	return map[string]any{"results": out}, nil
}

func asProtocolError(err error) *protocol.Error {
	var perr *protocol.Error
	if errors.As(err, &perr) {
		return perr
	}
	return protocol.ErrInternal
}

type historyRequest struct {
	Channel string        `json:"channel"`
	Limit   int           `json:"limit"`
	Since   *hub.Position `json:"since"`
}

func (s *Server) apiHistory(r *http.Request, body []byte) (any, error) {
	var req historyRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := protocol.ValidateChannel(req.Channel); err != nil {
		return nil, err
	}
	ns, err := s.hub.NamespaceOf(req.Channel)
	if err != nil {
		return nil, protocol.ErrBadChannel.WithMessage("unknown namespace")
	}
	if !s.hub.KeepsHistory(ns) {
		return nil, protocol.ErrUnavailable.WithMessage("channel keeps no history")
	}
	if req.Limit < 0 {
		return nil, protocol.ErrBadRequest.WithMessage("limit must not be negative")
	}
	pubs, top, ok, err := s.hub.History(r.Context(), req.Channel, req.Limit, req.Since)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, protocol.ErrUnavailable.WithMessage("position cannot be recovered")
	}
	if pubs == nil {
		pubs = []protocol.Publication{}
	}
	return protocol.HistoryResult{Epoch: top.Epoch, Offset: top.Offset, Publications: pubs}, nil
}

func (s *Server) apiPresence(r *http.Request, body []byte) (any, error) {
	var req struct {
		Channel string `json:"channel"`
	}
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := protocol.ValidateChannel(req.Channel); err != nil {
		return nil, err
	}
	ns, err := s.hub.NamespaceOf(req.Channel)
	if err != nil {
		return nil, protocol.ErrBadChannel.WithMessage("unknown namespace")
	}
	if !ns.Presence {
		return nil, protocol.ErrUnavailable.WithMessage("channel has no presence")
	}
	return protocol.PresenceResult{Clients: s.hub.Presence(req.Channel)}, nil
}

func (s *Server) apiDisconnect(r *http.Request, body []byte) (any, error) {
	var req struct {
		User      string `json:"user"`
		Reconnect bool   `json:"reconnect"`
	}
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if req.User == "" {
		return nil, protocol.ErrBadRequest.WithMessage("user is required")
	}
	d := protocol.DisconnectKicked
	if req.Reconnect {
		d = protocol.DisconnectForceReconnect
	}
	return map[string]int{"disconnected": s.node.DisconnectUser(req.User, d)}, nil
}

func (s *Server) apiUnsubscribe(r *http.Request, body []byte) (any, error) {
	var req struct {
		User    string `json:"user"`
		Channel string `json:"channel"`
	}
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if req.User == "" {
		return nil, protocol.ErrBadRequest.WithMessage("user is required")
	}
	if err := protocol.ValidateChannel(req.Channel); err != nil {
		return nil, err
	}
	n := 0
	for _, sess := range s.node.UserSessions(req.User) {
		if sess.Unsubscribe(req.Channel, 2000, "unsubscribed by server") {
			n++
		}
	}
	return map[string]int{"unsubscribed": n}, nil
}

func (s *Server) apiToken(r *http.Request, body []byte) (any, error) {
	var req struct {
		User     string   `json:"user"`
		TTL      string   `json:"ttl"`
		Channels []string `json:"channels"`
		Publish  []string `json:"publish"`
	}
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if req.User == "" || len(req.User) > 255 {
		return nil, protocol.ErrBadRequest.WithMessage("user must be 1-255 bytes")
	}
	ttl := time.Hour
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			return nil, protocol.ErrBadRequest.WithMessage("ttl must be a positive duration such as \"1h\"")
		}
		ttl = d
	}
	c := auth.NewClaims(req.User, ttl, time.Now(), req.Channels...)
	c.Publish = req.Publish
	tok, err := s.verifier.Mint(c)
	if err != nil {
		return nil, err
	}
	return map[string]any{"token": tok, "expires_in": int64(ttl / time.Second)}, nil
}
