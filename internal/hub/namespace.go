package hub

import (
	"fmt"
	"time"

	"github.com/sori-dev/sori/internal/protocol"
)

// Who may publish into a namespace's channels from a client connection.
const (
	PublishSubscribers = "subscribers" // clients subscribed to the channel
	PublishServer      = "server"      // only the server API (and server-side code)
)

// Who may subscribe to a namespace's channels.
const (
	SubscribeAny   = "any"   // any connected client (anonymous ones only if Anonymous)
	SubscribeToken = "token" // the connection token must grant the channel
	SubscribeUser  = "user"  // channel "ns:<user>" (or "ns:<user>#…") only for that user
)

// Namespace holds the options shared by all channels whose name starts with
// "<Name>:". The namespace with the empty name applies to channels without a
// prefix. The zero value is a channel without history or presence that
// subscribers may publish to.
type Namespace struct {
	Name           string        `json:"name"`
	HistorySize    int           `json:"history_size"`     // publications kept for history and resume; 0 = none
	HistoryTTL     time.Duration `json:"history_ttl"`      // how long a publication stays in history; 0 = until pushed out
	Presence       bool          `json:"presence"`         // track who is subscribed
	JoinLeave      bool          `json:"join_leave"`       // push join/leave to subscribers (needs Presence)
	Publish        string        `json:"publish"`          // PublishSubscribers (default) or PublishServer
	Subscribe      string        `json:"subscribe"`        // SubscribeAny (default), SubscribeToken or SubscribeUser
	Anonymous      bool          `json:"anonymous"`        // anonymous connections may subscribe
	Conflate       bool          `json:"conflate"`         // a slow reader gets only the latest queued value
	MaxMessageSize int           `json:"max_message_size"` // bytes of data per publication; 0 = server default
}

// Validate reports a namespace option that makes no sense.
func (ns *Namespace) Validate() error {
	if ns.Name != "" {
		if err := protocol.ValidateChannel(ns.Name); err != nil || protocol.Namespace(ns.Name+":x") != ns.Name {
			return fmt.Errorf("namespace %q: name must be a channel-name prefix without ':'", ns.Name)
		}
	}
	switch ns.Publish {
	case "", PublishSubscribers, PublishServer:
	default:
		return fmt.Errorf("namespace %q: publish must be %q or %q", ns.Name, PublishSubscribers, PublishServer)
	}
	switch ns.Subscribe {
	case "", SubscribeAny, SubscribeToken, SubscribeUser:
	default:
		return fmt.Errorf("namespace %q: subscribe must be %q, %q or %q", ns.Name, SubscribeAny, SubscribeToken, SubscribeUser)
	}
	if ns.HistorySize < 0 || ns.HistoryTTL < 0 || ns.MaxMessageSize < 0 {
		return fmt.Errorf("namespace %q: sizes and durations must not be negative", ns.Name)
	}
	if ns.JoinLeave && !ns.Presence {
		return fmt.Errorf("namespace %q: join_leave needs presence", ns.Name)
	}
	return nil
}

// ServerOnlyPublish reports whether clients are refused publishing.
func (ns *Namespace) ServerOnlyPublish() bool { return ns.Publish == PublishServer }

// DefaultNamespaces are the namespaces a server has with no configuration:
// application pub/sub with history and resume, chat rooms, ticker-style
// feeds and personal channels.
func DefaultNamespaces() []Namespace {
	return []Namespace{
		{Name: "", HistorySize: 0},
		// "app:…" is for an application's own channels: a token that grants
		// the channel (or "app:*") subscribes, subscribers publish, and a
		// client that reconnects within 10 minutes resumes what it missed.
		{Name: "app", HistorySize: 100, HistoryTTL: 10 * time.Minute, Presence: true, JoinLeave: true, Subscribe: SubscribeToken},
		{Name: "chat", HistorySize: 200, HistoryTTL: 24 * time.Hour, Presence: true, JoinLeave: true, Subscribe: SubscribeToken},
		{Name: "feed", HistorySize: 16, HistoryTTL: time.Hour, Publish: PublishServer, Anonymous: true, Conflate: true},
		{Name: "user", HistorySize: 100, HistoryTTL: 24 * time.Hour, Publish: PublishServer, Subscribe: SubscribeUser},
	}
}
