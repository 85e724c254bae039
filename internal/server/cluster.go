package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/sori-dev/sori/internal/chat"
	"github.com/sori-dev/sori/internal/cluster"
	"github.com/sori-dev/sori/internal/config"
	"github.com/sori-dev/sori/internal/hub"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/store"
	"github.com/sori-dev/sori/internal/store/postgres"
	"github.com/sori-dev/sori/internal/store/sqlite"
)

// OpenStore opens the chat store cfg names: the shared PostgreSQL database
// when cfg.Postgres is set (cluster mode), else the SQLite file in the data
// dir. `sori serve` and `sori user` both use it, so the CLI always acts on
// the store the server serves.
func OpenStore(ctx context.Context, cfg config.Config) (store.Store, error) {
	if cfg.Postgres != "" {
		st, err := postgres.Open(ctx, cfg.Postgres, postgres.Options{})
		if err != nil {
			return nil, fmt.Errorf("server: open chat store: %w", err)
		}
		return st, nil
	}
	st, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, sqlite.DefaultFileName), sqlite.Options{})
	if err != nil {
		return nil, fmt.Errorf("server: open chat store: %w", err)
	}
	return st, nil
}

// blobsOf returns where the chat keeps uploaded bytes: in the PostgreSQL
// store when that is the store, so that every node serves every file; nil
// (the data dir) otherwise.
func blobsOf(st store.Store) chat.Blobs {
	if pg, ok := st.(*postgres.Store); ok {
		return pg
	}
	return nil
}

// memberCacheSize is the chat service's membership cache bound. On in
// cluster mode too (since issue 12): every membership change made on a node
// is passed to every other node before it returns (remoteControl.MemberChanged),
// and the cache is paused while this node is cut off from NATS. With
// --postgres but no --nats (nodes that cannot hear each other) it is off.
func memberCacheSize(cfg config.Config) int {
	if cfg.ClusterMode() && len(cfg.NATS) == 0 {
		return -1
	}
	return 0
}

// memberChanged is the chat's Config.MemberChanged: nil on a single node.
func (s *Server) memberChanged() func(room, user int64) {
	if s.bus == nil {
		return nil
	}
	return remoteControl{s.bus}.MemberChanged
}

// MemberChanged tells every other node that user's membership of room
// changed, and returns once each live node dropped its cached role (at most
// cluster.GatherTimeout for a node that does not answer). A change of
// unknown keys (0, 0) is not sent: the chat makes one only for a room just
// created, whose members no other node can have cached.
func (r remoteControl) MemberChanged(room, user int64) {
	if r.bus == nil || (room == 0 && user == 0) {
		return
	}
	r.bus.nats.BroadcastWait(cluster.Control{Kind: cluster.KindMembers, Room: room, UserID: user})
}

// busLink is this node's connection to the cluster bus. The bus is
// connected before the hub exists (the hub takes it as its Broker), so
// what arrives before attachBus finds no hub and is dropped: no client is
// subscribed yet then.
type busLink struct {
	nats   *cluster.NATS
	nodeID string
	hub    atomic.Pointer[hub.Hub]
	log    atomic.Pointer[cluster.JSLog] // history of the in-memory namespaces; nil when none keeps history
	chat   atomic.Pointer[chat.Service]  // set once the chat is mounted (membership cache invalidations)
	calls  atomic.Pointer[callRouter]    // calls across nodes (cluster_calls.go); nil until mounted
}

// connectBus connects to NATS when cfg.NATS is set and returns the hub's
// Broker (nil on a single node).
func (s *Server) connectBus() (hub.Broker, error) {
	if len(s.cfg.NATS) == 0 {
		return nil, nil
	}
	id := s.cfg.NodeID
	if id == "" {
		var b [6]byte
		rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	link := &busLink{nodeID: id}
	n, err := cluster.Connect(s.cfg.NATS, id, func(channel, epoch string, pub protocol.Publication) {
		if l := link.log.Load(); l != nil {
			l.Observe(channel, epoch, pub.Offset)
		}
		if h := link.hub.Load(); h != nil {
			h.HandlePublication(channel, epoch, pub)
		}
	}, s.log)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	link.nats = n
	s.bus = link
	s.log.Info("cluster bus connected", "node", id)
	s.OnShutdown(func(context.Context) error { return n.Close() })
	return n, nil
}

// attachBus moves the history of the namespaces that keep it in memory on
// a single node into JetStream (chat's is the chat store's), then starts
// delivering the bus's publications to the hub.
func (s *Server) attachBus(namespaces []hub.Namespace) error {
	if s.bus == nil {
		return nil
	}
	if namespaces == nil {
		namespaces = hub.DefaultNamespaces()
	}
	var streams []cluster.Stream
	for _, ns := range namespaces {
		if ns.HistorySize > 0 && ns.Name != chat.Namespace {
			streams = append(streams, cluster.Stream{Namespace: ns.Name, Size: ns.HistorySize, TTL: ns.HistoryTTL})
		}
	}
	if len(streams) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		l, err := cluster.OpenJSLog(ctx, s.bus.nats.Conn(), s.bus.nodeID, s.bus.nats.Replicas(), streams)
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		for _, st := range streams {
			s.hub.SetBackend(st.Namespace, l)
		}
		s.bus.log.Store(l)
	}
	s.bus.hub.Store(s.hub)
	s.bus.nats.OnControl(cluster.ControlHandler{
		Control: s.applyControl,
		Gone: func(node string) {
			s.hub.HandleNodeGone(node)
			if r := s.bus.calls.Load(); r != nil {
				r.nodeGone(node)
			}
		},
		Back: func(string) {
			s.hub.HandleNodeBack()
			// It may have missed this node's membership changes, and this
			// node its: forget every cached role.
			if c := s.bus.chat.Load(); c != nil {
				c.ForgetMember(0, 0)
			}
		},
		// Cut off from NATS, this node cannot hear other nodes' membership
		// changes: no cached role until it is back.
		Disconnected: func() {
			if c := s.bus.chat.Load(); c != nil {
				c.PauseMemberCache(true)
			}
		},
		Reconnected: func() {
			if c := s.bus.chat.Load(); c != nil {
				c.PauseMemberCache(false)
			}
		},
		Snapshot: s.hub.HandlePresenceSnapshot,
		Query:    s.answerQuery,
		Presence: s.hub.LocalPresence,
	})
	go s.bus.nats.Heartbeats(heartbeatEvery, heartbeatTimeout)
	return nil
}

// A node beats every heartbeatEvery; one silent for heartbeatTimeout is
// declared gone and its clients leave every channel's presence on the
// others (docs/architecture.md: within heartbeatTimeout + heartbeatEvery).
const (
	heartbeatEvery   = time.Second
	heartbeatTimeout = 3 * time.Second
)

// applyControl does on this node what another node asked of every node.
func (s *Server) applyControl(c cluster.Control) {
	switch c.Kind {
	case cluster.KindJoin, cluster.KindLeave:
		if len(c.Clients) == 1 {
			s.hub.HandlePresence(c.Channel, c.Origin, c.Kind == cluster.KindJoin, c.Clients[0])
		}
	case cluster.KindDisconnect:
		if n := s.node.DisconnectUser(c.User, protocol.Disconnect{Code: c.Code, Reason: c.Reason, Reconnect: c.Reconnect}); n > 0 {
			s.log.Info("connections closed for another node", "user", c.User, "by", c.Origin, "closed", n)
		}
	case cluster.KindMembers:
		if ch := s.bus.chat.Load(); ch != nil {
			ch.ForgetMember(c.Room, c.UserID)
		}
	case cluster.KindRevoke:
		u := store.User{Username: c.User, CredentialsGen: c.Gen, Disabled: c.Disabled}
		if c.At != 0 {
			u.CredentialsChangedAt = time.UnixMicro(c.At).UTC()
		}
		credentialRevocations{node: s.node, log: s.log}.closeStale(u)
	case cluster.KindUnsubscribe:
		for _, sess := range s.node.UserSessions(c.User) {
			sess.Unsubscribe(c.Channel, c.Code, c.Reason)
		}
	}
}

// remoteControl sends an action on a user's connections to the other
// nodes (nil-safe: nothing on a single node).
type remoteControl struct{ bus *busLink }

// DisconnectUser asks every other node to close user's connections with d
// and returns once each live node has.
func (r remoteControl) DisconnectUser(user string, d protocol.Disconnect) {
	if r.bus != nil {
		r.bus.nats.BroadcastWait(cluster.Control{Kind: cluster.KindDisconnect, User: user, Code: d.Code, Reason: d.Reason, Reconnect: d.Reconnect})
	}
}

// UnsubscribeUser asks every other node to end user's subscriptions to
// channel with an unsub push of code and reason, and returns once each live
// node has: after a kick returned, no node delivers the room to the user.
func (r remoteControl) UnsubscribeUser(user, channel string, code int, reason string) {
	if r.bus != nil {
		r.bus.nats.BroadcastWait(cluster.Control{Kind: cluster.KindUnsubscribe, User: user, Channel: channel, Code: code, Reason: reason})
	}
}

// Revoked tells every other node that u's credentials were revoked, so that
// each closes u's connections whose token died, and returns once each live
// node has (at most cluster.GatherTimeout). The message carries what
// accounts.TokenStands needs, so no node reads the store for it.
func (r remoteControl) Revoked(u store.User) {
	if r.bus == nil {
		return
	}
	c := cluster.Control{Kind: cluster.KindRevoke, User: u.Username, Gen: u.CredentialsGen, Disabled: u.Disabled}
	if !u.CredentialsChangedAt.IsZero() {
		c.At = u.CredentialsChangedAt.UnixMicro()
	}
	r.bus.nats.BroadcastWait(c)
}

// closeBus closes the bus after a failed New.
func (s *Server) closeBus() {
	if s.bus != nil {
		_ = s.bus.nats.Close()
	}
}

// clusterUnready says why this node should get no new clients, or "": a
// node cut off from the bus would serve its rooms without the other nodes'
// publications, so a load balancer should send clients elsewhere until it
// is back (the NATS client reconnects by itself).
func (s *Server) clusterUnready() string {
	if s.bus != nil && !s.bus.nats.Connected() {
		return "no connection to NATS"
	}
	return ""
}
