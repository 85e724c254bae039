// Package serverapi serves Sori's server API, /api/*: the HTTP calls a
// backend (a trading engine pushing ticks, an app server kicking a user) makes
// to act on channels, users and tokens. Every call is a POST with a JSON body,
// authorized by an API key in "Authorization: apikey <key>"; errors are JSON
// with a numbered code (docs/api.md).
//
// It works on the hub and the session node only. It must never import chat,
// transport or server: chat rooms are reached through the hub like any other
// channel, and the composition root (server) mounts this package, not the
// other way round.
package serverapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/sori-dev/sori/internal/auth"
	"github.com/sori-dev/sori/internal/httpx"
	"github.com/sori-dev/sori/internal/hub"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/session"
)

const maxAPIBody = 1 << 20

// Config is what the server API acts on. Every field but Log is required.
type Config struct {
	Hub      *hub.Hub
	Node     *session.Node
	Verifier *auth.Verifier // mints tokens for POST /api/token
	APIKeys  *auth.APIKeys
	// MaxMessageSize bounds publication data in namespaces that set no
	// max_message_size of their own.
	MaxMessageSize int
	Log            *slog.Logger
	// Remote, when set (cluster mode), carries /api/disconnect and
	// /api/unsubscribe to the other nodes, which act on their own
	// connections of the user.
	Remote interface {
		DisconnectUser(user string, d protocol.Disconnect)
		UnsubscribeUser(user, channel string, code int, reason string)
	}
}

// API is the server API. Its handlers hold no state of their own: they are
// safe for concurrent use as far as the hub and node are.
type API struct {
	cfg Config
}

// New returns the server API over cfg.
func New(cfg Config) *API {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &API{cfg: cfg}
}

// Register mounts every /api/* route of the server API on mux (an
// http.ServeMux, or a mux that wraps one).
func (a *API) Register(mux interface{ Handle(string, http.Handler) }) {
	mux.Handle("POST /api/publish", a.apiKey(a.apiPublish))
	mux.Handle("POST /api/broadcast", a.apiKey(a.apiBroadcast))
	mux.Handle("POST /api/history", a.apiKey(a.apiHistory))
	mux.Handle("POST /api/presence", a.apiKey(a.apiPresence))
	mux.Handle("POST /api/disconnect", a.apiKey(a.apiDisconnect))
	mux.Handle("POST /api/unsubscribe", a.apiKey(a.apiUnsubscribe))
	mux.Handle("POST /api/token", a.apiKey(a.apiToken))
}

// writeJSON and writeError keep the API handlers' call sites; the bytes and
// headers come from httpx, the one HTTP error surface.
func writeJSON(w http.ResponseWriter, status int, v any) { httpx.WriteJSON(w, status, v) }

func writeError(w http.ResponseWriter, status int, e *protocol.Error) {
	httpx.WriteErrorStatus(w, status, e)
}

// apiKey wraps an API handler: key check, body size limit, JSON decoding of
// the request into a fresh value, and protocol-error mapping.
func (a *API) apiKey(h func(r *http.Request, body []byte) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := ""
		if hdr := r.Header.Get("Authorization"); len(hdr) > 7 && strings.EqualFold(hdr[:7], "apikey ") {
			key = strings.TrimSpace(hdr[7:])
		}
		if !a.cfg.APIKeys.Valid(key) {
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
				a.cfg.Log.Error("api call failed", "path", r.URL.Path, "err", err)
				writeError(w, http.StatusInternalServerError, protocol.ErrInternal)
				return
			}
			httpx.WriteError(w, perr)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
}

func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return protocol.ErrBadRequest.WithMessage("malformed request: " + err.Error())
	}
	return nil
}

// publishData validates a publication coming through the API.
func (a *API) publishData(channel string, data json.RawMessage) error {
	if err := protocol.ValidateChannel(channel); err != nil {
		return err
	}
	ns, err := a.cfg.Hub.NamespaceOf(channel)
	if err != nil {
		return protocol.ErrBadChannel.WithMessage("unknown namespace " + protocol.Namespace(channel))
	}
	max := ns.MaxMessageSize
	if max == 0 {
		max = a.cfg.MaxMessageSize
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

func (a *API) apiPublish(r *http.Request, body []byte) (any, error) {
	var req publishRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := a.publishData(req.Channel, req.Data); err != nil {
		return nil, err
	}
	pos, err := a.cfg.Hub.Publish(r.Context(), req.Channel, req.Data, "")
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

func (a *API) apiBroadcast(r *http.Request, body []byte) (any, error) {
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
		if err := a.publishData(ch, req.Data); err != nil {
			res.Error = asProtocolError(err)
		} else if pos, err := a.cfg.Hub.Publish(r.Context(), ch, req.Data, ""); err != nil {
			// A refusal (a room that does not exist: 104) is the caller's
			// to see, as /api/publish shows it; only a failure is logged.
			if res.Error = httpx.ProtocolError(err); res.Error == nil {
				a.cfg.Log.Error("broadcast publish failed", "channel", ch, "err", err)
				res.Error = protocol.ErrInternal
			}
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

func (a *API) apiHistory(r *http.Request, body []byte) (any, error) {
	var req historyRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := protocol.ValidateChannel(req.Channel); err != nil {
		return nil, err
	}
	ns, err := a.cfg.Hub.NamespaceOf(req.Channel)
	if err != nil {
		return nil, protocol.ErrBadChannel.WithMessage("unknown namespace")
	}
	if !a.cfg.Hub.KeepsHistory(ns) {
		return nil, protocol.ErrUnavailable.WithMessage("channel keeps no history")
	}
	if req.Limit < 0 {
		return nil, protocol.ErrBadRequest.WithMessage("limit must not be negative")
	}
	pubs, top, ok, err := a.cfg.Hub.History(r.Context(), req.Channel, req.Limit, req.Since)
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

func (a *API) apiPresence(r *http.Request, body []byte) (any, error) {
	var req struct {
		Channel string `json:"channel"`
	}
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := protocol.ValidateChannel(req.Channel); err != nil {
		return nil, err
	}
	ns, err := a.cfg.Hub.NamespaceOf(req.Channel)
	if err != nil {
		return nil, protocol.ErrBadChannel.WithMessage("unknown namespace")
	}
	if !ns.Presence {
		return nil, protocol.ErrUnavailable.WithMessage("channel has no presence")
	}
	return protocol.PresenceResult{Clients: a.cfg.Hub.Presence(req.Channel)}, nil
}

func (a *API) apiDisconnect(r *http.Request, body []byte) (any, error) {
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
	if a.cfg.Remote != nil {
		a.cfg.Remote.DisconnectUser(req.User, d)
	}
	return map[string]int{"disconnected": a.cfg.Node.DisconnectUser(req.User, d)}, nil
}

func (a *API) apiUnsubscribe(r *http.Request, body []byte) (any, error) {
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
	const code, reason = 2000, "unsubscribed by server"
	if a.cfg.Remote != nil {
		a.cfg.Remote.UnsubscribeUser(req.User, req.Channel, code, reason)
	}
	n := 0
	for _, sess := range a.cfg.Node.UserSessions(req.User) {
		if sess.Unsubscribe(req.Channel, code, reason) {
			n++
		}
	}
	return map[string]int{"unsubscribed": n}, nil
}

func (a *API) apiToken(r *http.Request, body []byte) (any, error) {
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
	tok, err := a.cfg.Verifier.Mint(c)
	if err != nil {
		return nil, err
	}
	return map[string]any{"token": tok, "expires_in": int64(ttl / time.Second)}, nil
}
