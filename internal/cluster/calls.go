package cluster

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Calls carries calls across nodes: one node owns each room's call (its
// participants, mode and SFU media live there), the others pass their
// connections' call rpcs to it and deliver its pushes to those connections.
//
// Ownership is a key per room in a JetStream key-value bucket, created with
// compare-and-set, so two nodes can never both own a room: the first node
// that needs the room's call takes it, and keeps it as long as it lives (a
// call room is pinned to its node; a later call in the room goes there too).
// A node that finds the owner gone (declared gone by the heartbeats, or NATS
// says nobody listens on its subject) takes the key over, again by
// compare-and-set on the key's revision.
//
// Safe for concurrent use. The request handler and the push handler each run
// on their own goroutine (one per subscription), never on the bus's
// dispatch goroutine, so they may block briefly (a membership check).
type Calls struct {
	nc     *nats.Conn
	kv     jetstream.KeyValue
	nodeID string
	subs   []*nats.Subscription
	push   atomic.Pointer[func(conn string, frame []byte)]
}

// CallsBucket is the key-value bucket of room owners.
const CallsBucket = "sori_calls"

// CallRequest is a call rpc (or a notice) passed to the room's owner for a
// connection of another node.
type CallRequest struct {
	Method string          `json:"m"`
	Node   string          `json:"n"` // the connection's node
	Conn   string          `json:"c"` // the connection's id on its node
	User   string          `json:"u"`
	Data   json.RawMessage `json:"d,omitempty"`
	// Room and Reason: the arguments of MethodRemoveUser.
	Room   string `json:"r,omitempty"`
	Reason string `json:"why,omitempty"`
}

// CallReply is the owner's answer: a JSON result, or a numbered error.
type CallReply struct {
	Result json.RawMessage `json:"res,omitempty"`
	Code   int             `json:"code,omitempty"`
	Error  string          `json:"err,omitempty"`
}

// Notices that are not client rpcs.
const (
	MethodDisconnected = "_disconnected" // the connection is gone: drop it from every call
	MethodRemoveUser   = "_remove"       // User left or was removed from chat room Room
)

// ErrOwnerGone is returned by Forward when nobody answers on the owner's
// subject: the node is gone (or cut off from NATS).
var ErrOwnerGone = errors.New("cluster: the node owning the call is gone")

func callSubject(node string) string { return "sori.call." + node }
func pushSubject(node string) string { return "sori.callpush." + node }

// ForwardTimeout bounds one forwarded call rpc.
const ForwardTimeout = 3 * time.Second

// OpenCalls creates (or opens) the owners bucket and starts answering call
// rpcs addressed to this node with serve. Pushes for this node's
// connections go to the function set with OnPush.
func OpenCalls(ctx context.Context, n *NATS, serve func(CallRequest) CallReply) (*Calls, error) {
	js, err := jetstream.New(n.nc)
	if err != nil {
		return nil, fmt.Errorf("cluster: jetstream: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      CallsBucket,
		Description: "Sori: the node owning each room's call",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    n.Replicas(),
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: call owners bucket (is JetStream enabled on the NATS servers?): %w", err)
	}
	c := &Calls{nc: n.nc, kv: kv, nodeID: n.nodeID}
	sub, err := n.nc.Subscribe(callSubject(n.nodeID), func(m *nats.Msg) {
		var req CallRequest
		if err := json.Unmarshal(m.Data, &req); err != nil {
			n.log.Warn("cluster: dropped a malformed call request", "err", err)
			return
		}
		rep := serve(req)
		if m.Reply == "" {
			return // a notice
		}
		b, _ := json.Marshal(rep) // plain data
		if err := m.Respond(b); err != nil {
			n.log.Debug("cluster: call reply not sent", "err", err)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: subscribe to call requests: %w", err)
	}
	c.subs = append(c.subs, sub)
	sub, err = n.nc.Subscribe(pushSubject(n.nodeID), func(m *nats.Msg) {
		conn := m.Header.Get("Sori-Conn")
		if f := c.push.Load(); f != nil && conn != "" {
			(*f)(conn, m.Data)
		}
	})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("cluster: subscribe to call pushes: %w", err)
	}
	c.subs = append(c.subs, sub)
	if err := n.nc.Flush(); err != nil {
		c.Close()
		return nil, fmt.Errorf("cluster: subscribe to calls: %w", err)
	}
	return c, nil
}

// OnPush sets where pushes for this node's connections go. It runs on one
// goroutine, in the order the owner sent them, and must not block.
func (c *Calls) OnPush(f func(conn string, frame []byte)) { c.push.Store(&f) }

// NodeID is this node's id.
func (c *Calls) NodeID() string { return c.nodeID }

// Close stops answering.
func (c *Calls) Close() {
	for _, s := range c.subs {
		_ = s.Unsubscribe()
	}
}

func roomKey(room string) string { return "r" + base64.RawURLEncoding.EncodeToString([]byte(room)) }

// Owner returns the node owning room's call, making this node the owner when
// nobody owns it, or when dead(owner) says the owner is gone. Two nodes
// asking at once get the same answer (compare-and-set on the key).
func (c *Calls) Owner(ctx context.Context, room string, dead func(node string) bool) (string, error) {
	key := roomKey(room)
	for range 10 {
		e, err := c.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			if _, err := c.kv.Create(ctx, key, []byte(c.nodeID)); err == nil {
				return c.nodeID, nil
			} else if !errors.Is(err, jetstream.ErrKeyExists) {
				return "", fmt.Errorf("cluster: claim call of room %s: %w", room, err)
			}
			continue // another node claimed it first
		case err != nil:
			return "", fmt.Errorf("cluster: owner of call of room %s: %w", room, err)
		}
		owner := string(e.Value())
		if owner == c.nodeID || !dead(owner) {
			return owner, nil
		}
		if _, err := c.kv.Update(ctx, key, []byte(c.nodeID), e.Revision()); err == nil {
			return c.nodeID, nil
		}
		// Someone else took it over (or the owner came back): read again.
	}
	return "", fmt.Errorf("cluster: owner of call of room %s: too many concurrent claims", room)
}

// Lookup returns the node owning room's call, "" when no node ever took
// it (claims nothing).
func (c *Calls) Lookup(ctx context.Context, room string) (string, error) {
	e, err := c.kv.Get(ctx, roomKey(room))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("cluster: owner of call of room %s: %w", room, err)
	}
	return string(e.Value()), nil
}

// Forward passes req to owner and returns its reply; ErrOwnerGone when no
// node listens on the owner's subject.
func (c *Calls) Forward(ctx context.Context, owner string, req CallRequest) (CallReply, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return CallReply{}, fmt.Errorf("cluster: encode call request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, ForwardTimeout)
	defer cancel()
	m, err := c.nc.RequestWithContext(ctx, callSubject(owner), b)
	if errors.Is(err, nats.ErrNoResponders) {
		return CallReply{}, ErrOwnerGone
	}
	if err != nil {
		return CallReply{}, fmt.Errorf("cluster: call request to node %s: %w", owner, err)
	}
	var rep CallReply
	if err := json.Unmarshal(m.Data, &rep); err != nil {
		return CallReply{}, fmt.Errorf("cluster: call reply of node %s: %w", owner, err)
	}
	return rep, nil
}

// Notify passes req to owner without waiting for an answer (at most once;
// in order with this node's earlier requests to it).
func (c *Calls) Notify(owner string, req CallRequest) error {
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("cluster: encode call notice: %w", err)
	}
	if err := c.nc.Publish(callSubject(owner), b); err != nil {
		return fmt.Errorf("cluster: call notice to node %s: %w", owner, err)
	}
	return nil
}

// Push sends a push frame to connection conn of node. It never blocks on the
// network; pushes to one node arrive in the order they were sent, at most
// once.
func (c *Calls) Push(node, conn string, frame []byte) error {
	m := nats.NewMsg(pushSubject(node))
	m.Header.Set("Sori-Conn", conn)
	m.Data = frame
	if err := c.nc.PublishMsg(m); err != nil {
		return fmt.Errorf("cluster: call push to node %s: %w", node, err)
	}
	return nil
}
