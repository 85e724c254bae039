package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sori-dev/sori/internal/accounts"
	accountsrest "github.com/sori-dev/sori/internal/accounts/rest"
	"github.com/sori-dev/sori/internal/chat"
	"github.com/sori-dev/sori/internal/chat/rest"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/ratelimit"
	"github.com/sori-dev/sori/internal/session"
	"github.com/sori-dev/sori/internal/store"
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
	revoked := credentialRevocations{node: s.node, log: s.log, remote: remoteControl{s.bus}}
	var svc *chat.Service // set below, before the server takes requests
	profileChanged := func(ctx context.Context, u store.User) { svc.ProfileChanged(ctx, u, accounts.AvatarURL(u)) }
	acc, err := accounts.New(accounts.Config{Store: st, Hasher: hasher, Verifier: s.verifier, Registration: accounts.Registration(s.cfg.Registration),
		LoginRate: s.cfg.LoginRate, LoginBurst: s.cfg.LoginBurst, Log: s.log, OnRevoke: revoked.revoked, OnProfile: profileChanged})
	if err != nil {
		_ = st.Close()
		return err
	}
	// Every verification of a connection token (connect, refresh, REST
	// bearer JWTs, /rtc/config) asks the store whether the user's
	// credentials were revoked since the token was issued.
	s.verifier.SetCheck(acc.CheckToken)
	stopPoll := revoked.poll(st, credentialPollInterval)
	pusher, err := s.newPush(st)
	if err != nil {
		stopPoll()
		_ = st.Close()
		return err
	}
	svc, err = chat.New(chat.Config{
		Store: st, Hub: s.hub, Resolve: acc.UserForSubject, Unsubscriber: nodeUnsubscriber{s.node, remoteControl{s.bus}},
		DataDir: s.cfg.DataDir, Log: s.log, MemberCacheSize: memberCacheSize(s.cfg), MemberChanged: s.memberChanged(),
		UploadQuota: int64(s.cfg.UploadQuota), DiskReserve: int64(s.cfg.DiskReserve), Blobs: blobsOf(st),
		Notifier: notifier(pusher), AppendTimeout: s.cfg.AppendTimeout.D(),
	})
	if err != nil {
		stopPoll()
		_ = st.Close()
		return err
	}
	s.chat, s.accounts, s.store = svc, acc, st
	if s.bus != nil {
		s.bus.chat.Store(svc)
	}
	s.hub.SetBackend(chat.Namespace, svc.Backend())
	s.node.SetAuthorizer(chat.Namespace, svc.Authorizer())

	for name, m := range svc.Methods() {
		s.node.HandleRPC(name, func(ctx context.Context, sess *session.Session, data json.RawMessage) (any, error) {
			return m(ctx, sess.User(), data)
		})
	}

	accountsrest.New(acc).Routes(s.Handle)
	s.pushRoutes(acc, pusher)
	s.adminRoutes(acc, st)
	rest.New(rest.Config{Chat: svc, Accounts: acc, Log: s.log,
		Upload: ratelimit.New(ratelimit.Config{Rate: s.cfg.UploadRate / 60, Burst: s.cfg.UploadBurst})}).Routes(s.Handle)
	s.OnShutdown(func(context.Context) error { stopPoll(); return st.Close() })
	return nil
}

// credentialPollInterval is how often the server looks in the store for
// credential revocations made by another process (`sori user
// reset-password` on the same data dir): the longest an open connection of a
// reset user stays open (docs/api.md, "Credentials").
const credentialPollInterval = 2 * time.Second

// credentialRevocations closes the connections whose token a revocation
// made stale, with 4501: at once for a revocation made through this
// server's accounts service, within credentialPollInterval for one made by
// another process. Connections whose token still stands (made after the
// change with a fresh token) stay open.
type credentialRevocations struct {
	node   *session.Node
	log    *slog.Logger
	remote remoteControl // the other nodes, in cluster mode
}

// revoked is the accounts service's OnRevoke: it closes u's stale
// connections on this node and, in cluster mode, on every other node before
// it returns (cluster.go, remoteControl.Revoked; at most 1 s for a node that
// does not answer, which the store poll then covers).
func (c credentialRevocations) revoked(u store.User) {
	c.closeStale(u)
	c.remote.Revoked(u)
}

// closeStale closes u's connections whose token no longer stands.
func (c credentialRevocations) closeStale(u store.User) {
	seen := map[*session.Session]bool{}
	closed := 0
	// Sessions are indexed by the token's subject; accounts match names
	// ignoring case, so look under both spellings.
	for _, name := range []string{u.Username, store.FoldName(u.Username)} {
		for _, sess := range c.node.UserSessions(name) {
			if seen[sess] {
				continue
			}
			seen[sess] = true
			if cl := sess.Claims(); cl != nil && accounts.TokenStands(u, cl) != nil {
				sess.Disconnect(protocol.DisconnectUnauthorized)
				closed++
			}
		}
	}
	if closed > 0 {
		c.log.Info("connections closed after credential revocation", "user", u.Username, "closed", closed)
	}
}

// poll starts looking for revocations in st every interval and returns the
// function that stops it (and waits for it). Changes before the start are
// ignored: tokens minted before them are refused at connect anyway.
func (c credentialRevocations) poll(st store.Store, interval time.Duration) (stop func()) {
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		since := time.Now()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), interval)
			users, err := st.CredentialsChangedSince(ctx, since)
			cancel()
			if err != nil {
				c.log.Warn("credential revocation poll failed", "err", err)
				continue
			}
			for _, u := range users {
				c.closeStale(u)
				since = u.CredentialsChangedAt
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); <-exited }) }
}

// nodeUnsubscriber ends a user's subscriptions on every connection of this
// node, and in cluster mode asks the other nodes to do the same (the chat
// service calls it when a member is removed).
type nodeUnsubscriber struct {
	n      *session.Node
	remote remoteControl
}

func (u nodeUnsubscriber) UnsubscribeUser(user, channel string) {
	const code, reason = 2000, "removed from the room"
	u.remote.UnsubscribeUser(user, channel, code, reason)
	for _, sess := range u.n.UserSessions(user) {
		sess.Unsubscribe(channel, code, reason)
	}
}
