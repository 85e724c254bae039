package server

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/sori-dev/sori/internal/accounts"
	"github.com/sori-dev/sori/internal/chat"
	"github.com/sori-dev/sori/internal/chat/rest"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/session"
)

// mountChat wires the chat: the SQLite store in the data dir, accounts, the
// chat service as the hub Backend and session Authorizer of the "chat"
// namespace, its rpc methods, and the /api/v1 REST routes.
func (s *Server) mountChat() error {
	if _, err := s.hub.NamespaceOf(chat.RoomChannel(1)); err != nil {
		return fmt.Errorf("server: chat needs the %q namespace: %w", chat.Namespace, err)
	}
	st, err := OpenStore(context.Background(), s.cfg)
	if err != nil {
		return err
	}
	hasher, err := accounts.NewHasher(accounts.DefaultParams, 0)
	if err != nil {
		_ = st.Close()
		return err
	}
	acc, err := accounts.New(accounts.Config{Store: st, Hasher: hasher, Verifier: s.verifier,
		LoginRate: s.cfg.LoginRate, LoginBurst: s.cfg.LoginBurst, Log: s.log})
	if err != nil {
		_ = st.Close()
		return err
	}
	svc, err := chat.New(chat.Config{
		Store: st, Hub: s.hub, Resolve: acc.UserForSubject, Unsubscriber: nodeUnsubscriber{s.node},
		DataDir: s.cfg.DataDir, Log: s.log, MemberCacheSize: memberCacheSize(s.cfg), Blobs: blobsOf(st),
	})
	if err != nil {
		_ = st.Close()
		return err
	}
	s.chat = svc
	s.hub.SetBackend(chat.Namespace, svc.Backend())
	s.node.SetAuthorizer(chat.Namespace, svc.Authorizer())

	// rpc "chat.typing" {"room":N} and "chat.read" {"room":N,"seq":S}: the
	// ephemeral actions a client sends over its connection.
	type roomArgs struct {
		Room int64  `json:"room"`
		Seq  uint64 `json:"seq"`
	}
	args := func(data json.RawMessage) (roomArgs, error) {
		var a roomArgs
		if err := json.Unmarshal(data, &a); err != nil || a.Room <= 0 {
			return a, protocol.ErrBadRequest.WithMessage(`data must be {"room":<room id>}`)
		}
		return a, nil
	}
	s.node.HandleRPC("chat.typing", func(ctx context.Context, sess *session.Session, data json.RawMessage) (any, error) {
		a, err := args(data)
		if err != nil {
			return nil, err
		}
		u, err := acc.UserForSubject(ctx, sess.User())
		if err != nil {
			return nil, err
		}
		return struct{}{}, svc.Typing(ctx, u, a.Room)
	})
	s.node.HandleRPC("chat.read", func(ctx context.Context, sess *session.Session, data json.RawMessage) (any, error) {
		a, err := args(data)
		if err != nil {
			return nil, err
		}
		u, err := acc.UserForSubject(ctx, sess.User())
		if err != nil {
			return nil, err
		}
		seq, err := svc.MarkRead(ctx, u, a.Room, a.Seq)
		return map[string]uint64{"last_read_seq": seq}, err
	})

	acc.Routes(s.Handle)
	rest.New(rest.Config{Chat: svc, Accounts: acc, Log: s.log}).Routes(s.Handle)
	s.OnShutdown(func(context.Context) error { return st.Close() })
	return nil
}

// nodeUnsubscriber ends a user's subscriptions on every connection of this
// node (the chat service calls it when a member is removed).
type nodeUnsubscriber struct{ n *session.Node }

func (u nodeUnsubscriber) UnsubscribeUser(user, channel string) {
	for _, sess := range u.n.UserSessions(user) {
		sess.Unsubscribe(channel, 2000, "removed from the room")
	}
}
