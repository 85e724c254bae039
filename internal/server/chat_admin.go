package server

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/sori-dev/sori/internal/accounts"
	"github.com/sori-dev/sori/internal/chat"
	"github.com/sori-dev/sori/internal/httpx"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/store"
)

// Server administration (docs/api.md, "Server administration"): endpoints
// for users with is_admin (`sori user add --admin`, or --admin).

var (
	errNotServerAdmin = protocol.ErrPermissionDenied.WithMessage("server administrators only")
	errDisableSelf    = protocol.ErrConflict.WithMessage("you cannot disable your own account: ask another server administrator")
)

// adminRoutes registers the admin endpoints.
func (s *Server) adminRoutes(acc *accounts.Service, st store.Store) {
	serve := func(h func(r *http.Request, id accounts.Identity) (any, int, error)) http.Handler {
		return acc.Require(func(w http.ResponseWriter, r *http.Request, id accounts.Identity) {
			if !id.User.IsAdmin {
				httpx.WriteError(w, errNotServerAdmin)
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, httpx.MaxJSONBody)
			res, status, err := h(r, id)
			if err != nil {
				perr := httpx.ProtocolError(err)
				if perr == nil {
					s.log.Error("admin request failed", "path", r.URL.Path, "err", err)
					perr = protocol.ErrInternal
				}
				httpx.WriteError(w, perr)
				return
			}
			httpx.WriteJSON(w, status, res)
		})
	}
	user := func(r *http.Request) (store.User, error) {
		u, err := st.GetUserByName(r.Context(), r.PathValue("name"))
		if errors.Is(err, store.ErrNotFound) {
			return u, protocol.ErrNotFound.WithMessage("no such user")
		}
		return u, err
	}
	s.Handle("GET /api/v1/admin/users", serve(func(r *http.Request, _ accounts.Identity) (any, int, error) {
		us, err := st.ListUsers(r.Context())
		if err != nil {
			return nil, 0, err
		}
		out := make([]map[string]any, 0, len(us))
		names := make([]string, 0, len(us))
		for _, u := range us {
			names = append(names, u.Username)
		}
		online := s.onlineUsers(names) // cluster_stats.go: on any node
		for _, u := range us {
			out = append(out, map[string]any{"username": u.Username, "display_name": u.DisplayName, "avatar_url": accounts.AvatarURL(u),
				"is_admin": u.IsAdmin, "disabled": u.Disabled, "created_at": u.CreatedAt,
				"online": online[u.Username]})
		}
		return map[string]any{"users": out}, http.StatusOK, nil
	}))
	disable := func(disabled bool) http.Handler {
		return serve(func(r *http.Request, id accounts.Identity) (any, int, error) {
			u, err := user(r)
			if err != nil {
				return nil, 0, err
			}
			if disabled && u.ID == id.User.ID {
				return nil, 0, errDisableSelf
			}
			if u, err = acc.SetDisabled(r.Context(), u.ID, disabled); err != nil {
				return nil, 0, err
			}
			return map[string]any{"username": u.Username, "disabled": u.Disabled}, http.StatusOK, nil
		})
	}
	s.Handle("POST /api/v1/admin/users/{name}/disable", disable(true))
	s.Handle("POST /api/v1/admin/users/{name}/enable", disable(false))
	s.Handle("DELETE /api/v1/admin/users/{name}/sessions/{id}", serve(func(r *http.Request, _ accounts.Identity) (any, int, error) {
		u, err := user(r)
		if err != nil {
			return nil, 0, err
		}
		ss, err := st.ListSessions(r.Context(), u.ID)
		if err != nil {
			return nil, 0, err
		}
		for _, x := range ss {
			if x.ID == r.PathValue("id") {
				if err := acc.EndSession(r.Context(), x.ID); err != nil {
					return nil, 0, err
				}
				return struct{}{}, http.StatusOK, nil
			}
		}
		return nil, 0, protocol.ErrNotFound.WithMessage("no such session of this user")
	}))
	s.Handle("GET /api/v1/admin/rooms", serve(func(r *http.Request, _ accounts.Identity) (any, int, error) {
		q := r.URL.Query()
		after, err1 := strconv.ParseInt(cmp.Or(q.Get("after"), "0"), 10, 64)
		limit, err2 := strconv.Atoi(cmp.Or(q.Get("limit"), "0"))
		if err1 != nil || err2 != nil || after < 0 || limit < 0 || limit > store.MaxLimit {
			return nil, 0, protocol.ErrBadRequest.WithMessage("after must be a room id (≥ 0), limit 1–1000")
		}
		rooms, err := st.ListRooms(r.Context(), after, limit)
		if err != nil {
			return nil, 0, err
		}
		out := make([]map[string]any, 0, len(rooms))
		for _, rm := range rooms {
			out = append(out, map[string]any{"id": rm.ID, "name": rm.Name, "title": rm.Title, "topic": rm.Topic, "kind": rm.Kind,
				"channel": chat.RoomChannel(rm.ID), "last_seq": rm.LastSeq, "created_at": rm.CreatedAt, "members": rm.Members})
		}
		return map[string]any{"rooms": out}, http.StatusOK, nil
	}))
	s.Handle("POST /api/v1/admin/users/{name}/reset-password", serve(func(r *http.Request, _ accounts.Identity) (any, int, error) {
		u, err := user(r)
		if err != nil {
			return nil, 0, err
		}
		b := make([]byte, 15)
		rand.Read(b)
		pw := base64.RawURLEncoding.EncodeToString(b)
		if err := acc.SetPassword(r.Context(), u.ID, pw); err != nil {
			return nil, 0, err
		}
		return map[string]any{"password": pw}, http.StatusOK, nil
	}))
	s.Handle("GET /api/v1/admin/users/{name}/sessions", serve(func(r *http.Request, _ accounts.Identity) (any, int, error) {
		u, err := user(r)
		if err != nil {
			return nil, 0, err
		}
		ss, err := st.ListSessions(r.Context(), u.ID)
		if err != nil {
			return nil, 0, err
		}
		out := make([]map[string]any, 0, len(ss))
		for _, x := range ss {
			v := map[string]any{"id": x.ID, "kind": x.Kind, "label": x.Label, "created_at": x.CreatedAt}
			if !x.ExpiresAt.IsZero() {
				v["expires_at"] = x.ExpiresAt
			}
			out = append(out, v)
		}
		return map[string]any{"sessions": out, "connections": len(s.node.UserSessions(u.Username))}, http.StatusOK, nil
	}))
	s.Handle("DELETE /api/v1/admin/users/{name}/sessions", serve(func(r *http.Request, _ accounts.Identity) (any, int, error) {
		u, err := user(r)
		if err != nil {
			return nil, 0, err
		}
		if err := acc.LogOutEverywhere(r.Context(), u.ID); err != nil {
			return nil, 0, err
		}
		return struct{}{}, http.StatusOK, nil
	}))
	s.Handle("GET /api/v1/admin/registration", serve(func(r *http.Request, _ accounts.Identity) (any, int, error) {
		return registrationView(r, acc, s.cfg.Registration)
	}))
	s.Handle("PUT /api/v1/admin/registration", serve(func(r *http.Request, _ accounts.Identity) (any, int, error) {
		var req struct {
			Mode *string `json:"mode"`
		}
		if perr := httpx.DecodeJSON(nil, r, &req); perr != nil {
			return nil, 0, perr
		}
		if req.Mode == nil {
			return nil, 0, protocol.ErrBadRequest.WithMessage(`body must be {"mode":"open"|"invite"|"closed"} ("" = the configured mode)`)
		}
		if err := acc.SetRegistrationMode(r.Context(), accounts.Registration(*req.Mode)); err != nil {
			return nil, 0, err
		}
		return registrationView(r, acc, s.cfg.Registration)
	}))
	s.Handle("POST /api/v1/admin/invites", serve(func(r *http.Request, id accounts.Identity) (any, int, error) {
		var req struct {
			TTLSeconds int64 `json:"ttl_seconds"`
			Uses       int   `json:"uses"`
		}
		if perr := httpx.DecodeJSON(nil, r, &req); perr != nil {
			return nil, 0, perr
		}
		if req.TTLSeconds < 0 || req.TTLSeconds > int64(accounts.MaxInviteTTL/time.Second) {
			return nil, 0, protocol.ErrBadRequest.WithMessage("ttl_seconds must be between 60 and 7776000 (90 days); 0 = 7 days")
		}
		code, inv, err := acc.CreateInvite(r.Context(), id.User, time.Duration(req.TTLSeconds)*time.Second, req.Uses)
		if err != nil {
			return nil, 0, err
		}
		v := inviteView(inv, id.User.Username)
		v["code"], v["url"] = code, origin(r)+"/#/invite/"+code
		return v, http.StatusCreated, nil
	}))
	s.Handle("GET /api/v1/admin/invites", serve(func(r *http.Request, _ accounts.Identity) (any, int, error) {
		invs, err := acc.ListInvites(r.Context())
		if err != nil {
			return nil, 0, err
		}
		out := make([]map[string]any, 0, len(invs))
		for _, inv := range invs {
			by := ""
			if u, err := st.GetUser(r.Context(), inv.CreatedBy); err == nil {
				by = u.Username
			}
			out = append(out, inviteView(inv, by))
		}
		return map[string]any{"invites": out}, http.StatusOK, nil
	}))
	s.Handle("DELETE /api/v1/admin/invites/{id}", serve(func(r *http.Request, _ accounts.Identity) (any, int, error) {
		if err := acc.RevokeInvite(r.Context(), r.PathValue("id")); err != nil {
			return nil, 0, err
		}
		return struct{}{}, http.StatusOK, nil
	}))
	stats := &statsRate{}
	s.Handle("GET /api/v1/admin/stats", serve(func(_ *http.Request, _ accounts.Identity) (any, int, error) {
		return s.stats(stats)
	}))
}

func registrationView(r *http.Request, acc *accounts.Service, configured string) (any, int, error) {
	mode, source, err := acc.RegistrationMode(r.Context())
	if err != nil {
		return nil, 0, err
	}
	return map[string]any{"mode": mode, "source": source, "configured": configured}, http.StatusOK, nil
}

// inviteView is an invite as the admin API shows it (never its code, which
// only the creation answer carries).
func inviteView(inv store.Invite, by string) map[string]any {
	return map[string]any{"id": inv.ID, "created_by": by, "created_at": inv.CreatedAt, "expires_at": inv.ExpiresAt,
		"uses": inv.Uses, "used": inv.Used}
}

// origin is the scheme and host the request was sent to, for links handed
// back to the admin who asked (behind a TLS-terminating proxy, one that
// sets X-Forwarded-Proto).
func origin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// statsRate remembers the publication count of the previous stats read, to
// answer messages_per_second as the rate since then.
type statsRate struct {
	local bool // this node's numbers only (an answer to another node)
	mu    sync.Mutex
	at    time.Time
	count float64
	rate  float64
}

// stats reads the same registry /metrics serves.
func (s *Server) stats(r *statsRate) (any, int, error) {
	mfs, err := s.metrics.Registry().Gather()
	if err != nil {
		return nil, 0, err
	}
	transports := map[string]float64{"websocket": 0, "sse": 0, "poll": 0}
	var channels, subs, pubs, slow float64
	value := func(m *dto.Metric) float64 {
		switch {
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue()
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue()
		}
		return 0
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "sori_connections":
				for _, l := range m.GetLabel() {
					if l.GetName() == "transport" {
						transports[l.GetValue()] += value(m)
					}
				}
			case "sori_channels":
				channels += value(m)
			case "sori_subscriptions":
				subs += value(m)
			case "sori_publications_total":
				pubs += value(m)
			case "sori_slow_consumer_disconnects_total":
				slow += value(m)
			}
		}
	}
	nodes := 1
	if !r.local {
		nodes += s.addClusterStats(transports, &channels, &subs, &pubs, &slow) // cluster_stats.go
	}
	var conns float64
	for _, v := range transports {
		conns += v
	}
	now := time.Now()
	r.mu.Lock()
	if !r.at.IsZero() && now.Sub(r.at) >= 500*time.Millisecond {
		r.rate = (pubs - r.count) / now.Sub(r.at).Seconds()
	}
	if r.at.IsZero() || now.Sub(r.at) >= 500*time.Millisecond {
		r.at, r.count = now, pubs
	}
	rate := r.rate
	r.mu.Unlock()
	return map[string]any{
		"connections": conns, "channels": channels, "subscriptions": subs, "publications_total": pubs,
		"messages_per_second": rate, "slow_consumer_disconnects": slow, "transports": transports,
		"time": now.UTC(), "nodes": nodes,
	}, http.StatusOK, nil
}
