package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sori-dev/sori/internal/cluster"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/rtc/signal"
	"github.com/sori-dev/sori/internal/session"
)

// callRouter puts every room's call on one node (docs/architecture.md,
// "Calls across nodes"). On a single node it only passes through to the
// signaling service. In cluster mode the node owning a room's call (a key in
// NATS KV, cluster.Calls) runs that call's signal.Service state — its
// participants, mode and SFU media — and the other nodes pass their
// connections' call rpcs to it over NATS; the owner sees each such
// connection as a remoteConn, whose pushes go back over NATS to the node
// holding it.
//
// Lock order: callRouter.mu is a leaf; it is taken under signal's
// Service.mu (remoteConn.Send) and never held while calling the Service.
type callRouter struct {
	calls   *signal.Service
	methods map[string]signal.Method
	cb      *cluster.Calls // nil on a single node
	nats    *cluster.NATS
	log     interface {
		Warn(string, ...any)
		Debug(string, ...any)
	}

	mu     sync.Mutex
	owners map[string]string          // room → owner, as last learnt (a cache; see owner)
	local  map[string]*localCall      // by session id: this node's connections in calls owned elsewhere
	remote map[string]*remoteConn     // by node "/" conn id: other nodes' connections in calls owned here
	nodes  map[string]map[string]bool // node → keys of remote
}

// localCall is a connection of this node that took part in calls owned by
// other nodes: where its pushes go, and which owners to tell when it goes.
type localCall struct {
	sess  *session.Session
	rooms map[string]joined // room → where it joined
}

type joined struct{ owner, participant string }

// remoteConn is a connection of another node as the owner's signal.Service
// sees it. One value per connection (interned in callRouter.remote), so the
// Service's per-connection maps key it like a local session.
type remoteConn struct {
	r        *callRouter
	node, id string
	user     string
}

func (c *remoteConn) ID() string   { return c.node + "/" + c.id }
func (c *remoteConn) User() string { return c.user }

// Send passes a push to the connection's node (signal calls it with its lock
// held: Push only buffers).
func (c *remoteConn) Send(frame []byte) {
	if err := c.r.cb.Push(c.node, c.id, frame); err != nil {
		c.r.log.Debug("call push to another node not sent", "node", c.node, "err", err)
	}
}

// routeCalls returns the router of calls: pass-through on a single node,
// owner-based in cluster mode.
func (s *Server) routeCalls(calls *signal.Service) (*callRouter, error) {
	r := &callRouter{calls: calls, methods: calls.Methods(), log: s.log,
		owners: map[string]string{}, local: map[string]*localCall{},
		remote: map[string]*remoteConn{}, nodes: map[string]map[string]bool{}}
	if s.bus == nil {
		return r, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cb, err := cluster.OpenCalls(ctx, s.bus.nats, r.serve)
	if err != nil {
		return nil, fmt.Errorf("server: calls across nodes: %w", err)
	}
	cb.OnPush(r.deliver)
	r.cb, r.nats = cb, s.bus.nats
	s.bus.calls.Store(r)
	s.OnShutdown(func(context.Context) error { cb.Close(); return nil })
	return r, nil
}

// Methods returns the call rpc methods as the node serves them to its
// connections: on a single node the Service's own; in cluster mode each
// one that names a room runs on the room's owner.
func (r *callRouter) Methods() map[string]signal.Method {
	if r.cb == nil {
		return r.methods
	}
	out := make(map[string]signal.Method, len(r.methods))
	for name, m := range r.methods {
		out[name] = func(ctx context.Context, c signal.Conn, data json.RawMessage) (any, error) {
			sess, ok := c.(*session.Session)
			room := roomOf(data)
			if !ok || room == "" {
				return m(ctx, c, data) // the Service refuses it as it should
			}
			return r.route(ctx, name, m, sess, room, data)
		}
	}
	return out
}

// roomOf is the "room" of a call rpc's data, as signal.Room reads it (a
// string or an integer); "" when absent or malformed.
func roomOf(data json.RawMessage) string {
	var v struct {
		Room signal.Room `json:"room"`
	}
	if json.Unmarshal(data, &v) != nil {
		return ""
	}
	return string(v.Room)
}

var errCallNodeDown = protocol.ErrInternal.WithMessage("the node hosting this room's call cannot be reached: try again")

// route runs method m for sess on the owner of room's call.
func (r *callRouter) route(ctx context.Context, name string, m signal.Method, sess *session.Session, room string, data json.RawMessage) (any, error) {
	var failed string // an owner that did not answer: take the call over from it
	for range 2 {
		owner, err := r.owner(ctx, room, failed)
		if err != nil {
			r.log.Warn("call owner lookup failed", "room", room, "err", err)
			return nil, errCallNodeDown
		}
		if owner == r.cb.NodeID() {
			return m(ctx, sess, data)
		}
		r.track(sess, room, owner)
		rep, err := r.cb.Forward(ctx, owner, cluster.CallRequest{Method: name, Node: r.cb.NodeID(), Conn: sess.ID(), User: sess.User(), Data: data})
		if errors.Is(err, cluster.ErrOwnerGone) {
			r.forget(owner)
			failed = owner
			continue
		}
		if err != nil {
			r.log.Warn("call rpc to the owner failed", "room", room, "owner", owner, "err", err)
			return nil, errCallNodeDown
		}
		if rep.Code != 0 {
			return nil, &protocol.Error{Code: rep.Code, Message: rep.Error}
		}
		switch name {
		case "call.join":
			var res struct {
				Participant string `json:"participant"`
			}
			_ = json.Unmarshal(rep.Result, &res)
			r.mu.Lock()
			if lc := r.local[sess.ID()]; lc != nil {
				lc.rooms[room] = joined{owner: owner, participant: res.Participant}
			}
			r.mu.Unlock()
		case "call.leave":
			r.mu.Lock()
			if lc := r.local[sess.ID()]; lc != nil {
				lc.rooms[room] = joined{owner: owner}
			}
			r.mu.Unlock()
		}
		return rep.Result, nil
	}
	return nil, errCallNodeDown
}

// owner returns the node owning room's call (claiming it when nobody does,
// or when its owner is gone or is failed).
func (r *callRouter) owner(ctx context.Context, room, failed string) (string, error) {
	r.mu.Lock()
	o, ok := r.owners[room]
	r.mu.Unlock()
	if ok && o != failed {
		return o, nil
	}
	o, err := r.cb.Owner(ctx, room, func(node string) bool { return node == failed || r.nats.IsGone(node) })
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	r.owners[room] = o
	r.mu.Unlock()
	return o, nil
}

// track remembers that sess takes part in a call owned by owner: its pushes
// arrive here, and owner must hear when it goes.
func (r *callRouter) track(sess *session.Session, room, owner string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	lc := r.local[sess.ID()]
	if lc == nil {
		lc = &localCall{sess: sess, rooms: map[string]joined{}}
		r.local[sess.ID()] = lc
	}
	if _, ok := lc.rooms[room]; !ok {
		lc.rooms[room] = joined{owner: owner}
	}
}

// forget drops the cached ownerships of owner.
func (r *callRouter) forget(owner string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for room, o := range r.owners {
		if o == owner {
			delete(r.owners, room)
		}
	}
}

// deliver passes a push of an owner to this node's connection conn.
func (r *callRouter) deliver(conn string, frame []byte) {
	r.mu.Lock()
	lc := r.local[conn]
	r.mu.Unlock()
	if lc != nil {
		lc.sess.Send(frame)
	}
}

// serve runs on the owner a call rpc of another node's connection.
func (r *callRouter) serve(req cluster.CallRequest) cluster.CallReply {
	switch req.Method {
	case cluster.MethodDisconnected:
		if rc := r.dropRemote(req.Node, req.Conn); rc != nil {
			r.calls.Disconnected(rc)
		}
		return cluster.CallReply{}
	case cluster.MethodRemoveUser:
		r.calls.RemoveUser(signal.Room(req.Room), req.User, req.Reason)
		return cluster.CallReply{Result: json.RawMessage("{}")}
	}
	m := r.methods[req.Method]
	if m == nil {
		return replyOf(nil, protocol.ErrUnknownMethod.WithMessage("unknown rpc method "+req.Method))
	}
	ctx, cancel := context.WithTimeout(context.Background(), cluster.ForwardTimeout)
	defer cancel()
	return replyOf(m(ctx, r.remoteConn(req.Node, req.Conn, req.User), req.Data))
}

// replyOf encodes a method's outcome for the requesting node.
func replyOf(res any, err error) cluster.CallReply {
	if err != nil {
		var perr *protocol.Error
		if !errors.As(err, &perr) {
			perr = protocol.ErrInternal
		}
		return cluster.CallReply{Code: perr.Code, Error: perr.Message}
	}
	b, err := json.Marshal(res)
	if err != nil {
		return cluster.CallReply{Code: protocol.ErrInternal.Code, Error: protocol.ErrInternal.Message}
	}
	return cluster.CallReply{Result: b}
}

// remoteConn returns the one remoteConn of node's connection id.
func (r *callRouter) remoteConn(node, id, user string) *remoteConn {
	key := node + "/" + id
	r.mu.Lock()
	defer r.mu.Unlock()
	if rc := r.remote[key]; rc != nil {
		return rc
	}
	rc := &remoteConn{r: r, node: node, id: id, user: user}
	r.remote[key] = rc
	if r.nodes[node] == nil {
		r.nodes[node] = map[string]bool{}
	}
	r.nodes[node][key] = true
	return rc
}

func (r *callRouter) dropRemote(node, id string) *remoteConn {
	key := node + "/" + id
	r.mu.Lock()
	defer r.mu.Unlock()
	rc := r.remote[key]
	delete(r.remote, key)
	delete(r.nodes[node], key)
	return rc
}

// Disconnected drops sess from every call: those of this node, and, in
// cluster mode, those owned by other nodes (a notice to each owner).
func (r *callRouter) Disconnected(sess *session.Session) {
	r.calls.Disconnected(sess)
	if r.cb == nil {
		return
	}
	r.mu.Lock()
	lc := r.local[sess.ID()]
	delete(r.local, sess.ID())
	r.mu.Unlock()
	if lc == nil {
		return
	}
	told := map[string]bool{}
	for _, j := range lc.rooms {
		if !told[j.owner] {
			told[j.owner] = true
			_ = r.cb.Notify(j.owner, cluster.CallRequest{Method: cluster.MethodDisconnected, Node: r.cb.NodeID(), Conn: sess.ID()})
		}
	}
}

// RemoveUser removes user's participants from room's call, wherever the call
// is, and returns once the owner did (at most cluster.ForwardTimeout).
func (r *callRouter) RemoveUser(room signal.Room, user, reason string) {
	r.calls.RemoveUser(room, user, reason)
	if r.cb == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cluster.ForwardTimeout)
	defer cancel()
	owner, err := r.cb.Lookup(ctx, string(room))
	if err != nil {
		r.log.Warn("call removal: owner lookup failed", "room", room, "err", err)
		return
	}
	if owner == "" || owner == r.cb.NodeID() || r.nats.IsGone(owner) {
		return // no call elsewhere: done above
	}
	if _, err := r.cb.Forward(ctx, owner, cluster.CallRequest{Method: cluster.MethodRemoveUser, Node: r.cb.NodeID(), User: user, Room: string(room), Reason: reason}); err != nil {
		r.log.Warn("call removal not applied by the owner", "room", room, "owner", owner, "err", err)
	}
}

// ReasonOwnerGone is the reason of the "left" push a connection gets when
// the node that hosted its call is gone: the call ended; joining again
// starts it on a live node.
const ReasonOwnerGone = "node gone"

// nodeGone ends what a gone node took part in: its connections leave the
// calls this node owns, and this node's connections in calls it owned get a
// "left" push about themselves.
func (r *callRouter) nodeGone(node string) {
	if r.cb == nil {
		return
	}
	r.mu.Lock()
	var gone []*remoteConn
	for key := range r.nodes[node] {
		gone = append(gone, r.remote[key])
		delete(r.remote, key)
	}
	delete(r.nodes, node)
	for room, o := range r.owners {
		if o == node {
			delete(r.owners, room)
		}
	}
	type left struct {
		sess     *session.Session
		room, id string
	}
	var ended []left
	for _, lc := range r.local {
		for room, j := range lc.rooms {
			if j.owner == node {
				if j.participant != "" {
					ended = append(ended, left{lc.sess, room, j.participant})
				}
				delete(lc.rooms, room)
			}
		}
	}
	r.mu.Unlock()
	for _, rc := range gone {
		if rc != nil {
			r.calls.Disconnected(rc)
		}
	}
	for _, l := range ended {
		b, _ := json.Marshal(signal.Push{Push: "call", Room: signal.Room(l.room), Event: signal.EventLeft,
			Participant: &signal.Participant{ID: l.id, User: l.sess.User()}, Reason: ReasonOwnerGone})
		l.sess.Send(b)
	}
}
