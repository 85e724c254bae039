package server

import (
	"net/http"

	"github.com/sori-dev/sori/internal/accounts"
	"github.com/sori-dev/sori/internal/chat"
	"github.com/sori-dev/sori/internal/httpx"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/push"
	"github.com/sori-dev/sori/internal/store"
)

// Web Push (docs/api.md, "Web Push"): the VAPID key comes from --vapid-key
// or, on a single node, from the data dir. A cluster generates no key (each
// node would sign with its own, and browsers bind a subscription to one),
// so there push is off unless the key is configured.

// newPush returns the push service, or nil (push off) in cluster mode
// without a configured key.
func (s *Server) newPush(st store.Store) (*push.Service, error) {
	var key *push.Key
	var err error
	switch {
	case s.cfg.VAPIDKey != "":
		key, err = push.ParseKey(s.cfg.VAPIDKey)
	case s.cfg.ClusterMode():
		s.log.Warn("web push is off: cluster mode needs --vapid-key, the same on every node")
		return nil, nil
	default:
		key, err = push.LoadOrCreateKey(s.cfg.DataDir)
	}
	if err != nil {
		return nil, err
	}
	return push.New(push.Config{
		Store: st, Key: key, Subject: s.cfg.VAPIDSubject, Online: s.userOnline, Grace: s.cfg.PushGrace.D(),
		HTTP: s.opts.pushHTTP, Hosts: s.cfg.PushHosts, AllowHTTP: s.opts.pushAllowHTTP, AllowPrivate: s.opts.pushAllowHTTP, Log: s.log,
	})
}

// userOnline reports whether user has a connection: on this node, or on
// another one as seen by the presence of their personal channel (which
// every app subscribes to).
func (s *Server) userOnline(user string) bool {
	if len(s.node.UserSessions(user)) > 0 {
		return true
	}
	return len(s.hub.Presence(chat.PersonalChannel(user))) > 0
}

// notifier is p as a chat.Notifier; nil when push is off (a nil
// *push.Service in the interface would not be nil).
func notifier(p *push.Service) chat.Notifier {
	if p == nil {
		return nil
	}
	return p
}

var errPushOff = protocol.ErrNotFound.WithMessage("web push is not configured on this server (cluster mode needs --vapid-key)")

// pushRoutes registers the Web Push endpoints.
func (s *Server) pushRoutes(acc *accounts.Service, p *push.Service) {
	serve := func(h func(w http.ResponseWriter, r *http.Request, id accounts.Identity) (any, int, error)) http.Handler {
		return acc.Require(func(w http.ResponseWriter, r *http.Request, id accounts.Identity) {
			if p == nil {
				httpx.WriteError(w, errPushOff)
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, httpx.MaxJSONBody)
			res, status, err := h(w, r, id)
			if err != nil {
				perr := httpx.ProtocolError(err)
				if perr == nil {
					s.log.Error("push request failed", "path", r.URL.Path, "err", err)
					perr = protocol.ErrInternal
				}
				httpx.WriteError(w, perr)
				return
			}
			httpx.WriteJSON(w, status, res)
		})
	}
	s.Handle("GET /api/v1/push/key", serve(func(_ http.ResponseWriter, _ *http.Request, _ accounts.Identity) (any, int, error) {
		return map[string]string{"public_key": p.PublicKey()}, http.StatusOK, nil
	}))
	s.Handle("POST /api/v1/push/subscriptions", serve(func(_ http.ResponseWriter, r *http.Request, id accounts.Identity) (any, int, error) {
		var sub push.Subscription
		if perr := httpx.DecodeJSON(nil, r, &sub); perr != nil {
			return nil, 0, perr
		}
		subID, err := p.Subscribe(r.Context(), id.User, sub)
		if err != nil {
			return nil, 0, err
		}
		return map[string]string{"id": subID}, http.StatusCreated, nil
	}))
	s.Handle("DELETE /api/v1/push/subscriptions/{id}", serve(func(_ http.ResponseWriter, r *http.Request, id accounts.Identity) (any, int, error) {
		if err := p.Unsubscribe(r.Context(), id.User, r.PathValue("id")); err != nil {
			return nil, 0, err
		}
		return struct{}{}, http.StatusOK, nil
	}))
}
