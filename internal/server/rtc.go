package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sori-dev/sori/internal/auth"
	"github.com/sori-dev/sori/internal/chat"
	"github.com/sori-dev/sori/internal/httpx"
	"github.com/sori-dev/sori/internal/metrics"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/rtc/signal"
	"github.com/sori-dev/sori/internal/rtc/turn"
	"github.com/sori-dev/sori/internal/session"
)

// mountRTC wires calls (docs/calls.md): the embedded STUN/TURN server when
// enabled, the call.* rpc methods of the signaling service, the removal from
// a call of whoever leaves or is kicked from the chat room, and
// GET /rtc/ice-servers. A TURN server that cannot start (its port is taken)
// stops the server at start, with the reason: found later, it would only
// show as calls that connect on one network and not on another.
func (s *Server) mountRTC() error {
	media := s.startSFU()
	ts, err := s.startTURN(sfuPorts(media))
	if err != nil {
		if sm, ok := media.(sfuMedia); ok {
			_ = sm.s.Close()
		}
		return err
	}
	iceServers := func(user string) []signal.ICEServer {
		if ts == nil {
			return []signal.ICEServer{}
		}
		list := ts.ICEServers(user, time.Now())
		out := make([]signal.ICEServer, 0, len(list))
		for _, is := range list {
			out = append(out, signal.ICEServer{URLs: is.URLs, Username: is.Username, Credential: is.Credential})
		}
		return out
	}
	calls, err := signal.New(signal.Config{
		Membership:     chatMembership{s.node},
		ICEServers:     iceServers,
		MeshLimit:      s.cfg.MeshLimit,
		Media:          media,
		SFULimit:       s.cfg.SFULimit,
		MeshReturn:     s.cfg.MeshReturn.D(),
		Notifier:       s.callNotifier(),
		BroadcastLimit: s.cfg.BroadcastLimit,
		Hosts: func(ctx context.Context, user, room string) (bool, error) {
			if s.chat == nil {
				return false, nil
			}
			return s.chat.IsRoomAdmin(ctx, user, room)
		},
		Logger: s.log,
	})
	if err != nil { // only a missing Membership fails, and one is passed
		s.log.Error("calls disabled", "err", err)
		return nil
	}
	router, err := s.routeCalls(calls) // cluster_calls.go: each room's call on one node
	if err != nil {
		return err
	}
	for name, m := range router.Methods() {
		s.node.HandleRPC(name, func(ctx context.Context, sess *session.Session, data json.RawMessage) (any, error) {
			return m(ctx, sess, data)
		})
	}
	s.node.OnClosed(router.Disconnected)
	if s.chat != nil {
		s.chat.OnMemberRemoved(func(roomID int64, user string, why chat.RemovalReason) {
			reason := signal.ReasonLeftRoom
			if why == chat.RemovedKicked {
				reason = signal.ReasonKicked
			}
			router.RemoveUser(signal.Room(strconv.FormatInt(roomID, 10)), user, reason)
		})
	}

	// GET /rtc/ice-servers with "Authorization: Bearer <connection token>":
	// the RTCIceServer list with fresh TURN credentials for the token's user,
	// for a client that needs them outside call.join (an ICE restart after the
	// credentials expired).
	s.mux.HandleFunc("GET /rtc/ice-servers", func(w http.ResponseWriter, r *http.Request) {
		claims, perr := s.bearerClaims(r)
		if perr != nil {
			writeBearerError(w, perr)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"ice_servers": iceServers(claims.User())})
	})
	return nil
}

var _ turn.Metrics = (*metrics.TURN)(nil)

// startTURN starts the embedded TURN server, or returns nil when it is
// disabled.
//
// The relay may reach the SFU's media port on the server's own addresses
// (selfPorts), so that a client that can only relay still reaches the SFU.
func (s *Server) startTURN(selfPorts []uint16) (*turn.Server, error) {
	if !s.cfg.TURNEnabled {
		return nil, nil
	}
	secret := s.cfg.TURNSecret
	if secret == "" {
		secret = turn.DeriveSecret(s.cfg.TokenSecret)
	}
	listen, listenTLS, relay := turn.ListenFor(s.cfg.Listen)
	if s.cfg.TURNListen != "" {
		listen = s.cfg.TURNListen
	}
	if s.cfg.TURNTLSListen != "" {
		listenTLS = s.cfg.TURNTLSListen
	}
	if s.cfg.TURNRelayAddress != "" {
		relay = s.cfg.TURNRelayAddress
	}
	cfg := turn.Config{
		ListenUDP:        listen,
		ListenTLS:        listenTLS,
		CertFile:         s.cfg.TURNCertFile,
		KeyFile:          s.cfg.TURNKeyFile,
		Realm:            s.cfg.TURNRealm,
		Secret:           secret,
		CredentialTTL:    s.cfg.TURNCredentialTTL.D(),
		RelayPortMin:     uint16(s.cfg.TURNRelayPortMin), // range checked by config.Validate
		RelayPortMax:     uint16(s.cfg.TURNRelayPortMax),
		RelayBindAddress: relay,
		ExternalIP:       s.cfg.TURNExternalIP,
		PublicHost:       s.cfg.TURNPublicHost,
		UserQuota:        s.cfg.TURNUserQuota,
		AllowPeers:       s.cfg.TURNAllowPeers,
		AllowSelfPorts:   selfPorts,
		Metrics:          s.metrics.TURN(),
		Logger:           s.log,
	}
	ts, err := turn.New(cfg)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = ts.Start(ctx)
		cancel()
	}
	if err != nil {
		return nil, fmt.Errorf("server: the embedded TURN server cannot start (--turn-listen %s; another server on this port? "+
			"pick another with --turn-listen, or turn it off with --turn=false): %w", listen, err)
	}
	s.OnShutdown(func(context.Context) error { return ts.Close() })
	return ts, nil
}

// bearerClaims verifies the connection token in the Authorization header.
func (s *Server) bearerClaims(r *http.Request) (*auth.Claims, *protocol.Error) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || tok == "" {
		return nil, protocol.ErrBadToken.WithMessage("Authorization: Bearer <connection token> is required")
	}
	claims, err := s.verifier.Verify(strings.TrimSpace(tok))
	if errors.Is(err, auth.ErrTokenExpired) {
		return nil, protocol.ErrTokenExpired
	}
	if errors.Is(err, auth.ErrCheckUnavailable) {
		return nil, protocol.ErrStoreDown
	}
	if err != nil || claims.User() == "" {
		return nil, protocol.ErrBadToken
	}
	return claims, nil
}

// writeBearerError answers a refused bearer token: 401 with a challenge,
// or 503 with Retry-After when the revocation check could not reach the
// store (the token may be fine: the client should come back).
func writeBearerError(w http.ResponseWriter, perr *protocol.Error) {
	if perr.Code == protocol.ErrStoreDown.Code {
		w.Header().Set("Retry-After", "1")
		httpx.WriteError(w, perr)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="sori"`)
	httpx.WriteErrorStatus(w, http.StatusUnauthorized, perr)
}

// chatMembership lets into a room's call whoever may subscribe to the chat
// room's channel "chat:<room>": the chat service's Authorizer, which reads
// room membership from the store. It is looked up at every join, so it works
// whatever order modules are mounted in; without a chat service nobody may
// join.
type chatMembership struct{ node *session.Node }

func (m chatMembership) IsMember(ctx context.Context, user, room string) (bool, error) {
	a := m.node.Authorizer("chat")
	if a == nil {
		return false, nil
	}
	err := a.CanSubscribe(ctx, user, "chat:"+room)
	var perr *protocol.Error
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &perr) && !errors.Is(perr, protocol.ErrInternal):
		return false, nil // not a member, no such room, or a name that is no chat room
	default:
		return false, fmt.Errorf("server: chat membership: %w", err)
	}
}
