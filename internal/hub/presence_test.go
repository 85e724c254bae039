package hub

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/protocol"
)

// presenceLink is node `from`'s PresenceBroker towards one other hub, as
// the cluster bus is (synchronous here).
type presenceLink struct {
	linkBroker
	from string
	mu   sync.Mutex
	peer *Hub
	ask  *presenceLink // the other direction, for snapshot answers
}

func (l *presenceLink) other() *Hub { l.mu.Lock(); defer l.mu.Unlock(); return l.peer }

func (l *presenceLink) PublishPresence(channel string, join bool, info protocol.ClientInfo) {
	if p := l.other(); p != nil {
		p.HandlePresence(channel, l.from, join, info)
	}
}

func (l *presenceLink) RequestPresence(channel string) {
	if p := l.other(); p != nil {
		go func() { // answered later, from the other node
			me := l.ask.other()
			me.HandlePresenceSnapshot(channel, l.ask.from, p.LocalPresence(channel))
		}()
	}
}

func (l *presenceLink) GatherPresence(channel string) []protocol.ClientInfo {
	if p := l.other(); p != nil {
		return p.LocalPresence(channel)
	}
	return nil
}

func joinLeaves(r *recorder) string {
	var out []string
	for _, d := range r.take() {
		if strings.Contains(d.frame, `"push":"join"`) || strings.Contains(d.frame, `"push":"leave"`) {
			out = append(out, d.frame)
		}
	}
	return strings.Join(out, "\n")
}

// Joins and leaves cross nodes, presence lists both nodes' subscribers, and
// a gone node's subscribers leave, with pushes.
func TestPresenceAcrossNodes(t *testing.T) {
	ns := []Namespace{{Name: "p", Presence: true, JoinLeave: true}}
	ab, ba := &presenceLink{from: "a"}, &presenceLink{from: "b"}
	a := newHub(t, Config{Namespaces: ns, Broker: ab})
	b := newHub(t, Config{Namespaces: ns, Broker: ba})
	ab.peer, ba.peer, ab.ask, ba.ask = b, a, ba, ab
	ctx := context.Background()
	ra, rb := newRecorder("ann", "c-a"), newRecorder("ben", "c-b")
	if err := a.Subscribe(ctx, "p:x", ra, SubscribeOptions{}, func(protocol.SubscribeResult) {}); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(ctx, "p:x", rb, SubscribeOptions{}, func(protocol.SubscribeResult) {}); err != nil {
		t.Fatal(err)
	}
	if got := joinLeaves(ra); !strings.Contains(got, `"push":"join"`) || !strings.Contains(got, `"ben"`) {
		t.Fatalf("A's subscriber got %q, want ben's join", got)
	}
	for _, h := range []*Hub{a, b} {
		if got := h.Presence("p:x"); len(got) != 2 {
			t.Fatalf("presence %v, want ann and ben", got)
		}
	}
	// B knows ann from A's snapshot answer (she joined before B had the
	// channel): when A is gone, B's subscriber sees her leave.
	waitFor(t, func() bool {
		c := b.lookChannel("p:x")
		defer c.mu.Unlock()
		_, ok := c.remote["c-a"]
		return ok
	})
	b.HandleNodeGone("a")
	if got := joinLeaves(rb); !strings.Contains(got, `"push":"leave"`) || !strings.Contains(got, `"ann"`) {
		t.Fatalf("B's subscriber got %q, want ann's leave", got)
	}
	b.HandleNodeGone("a") // once only
	if got := joinLeaves(rb); got != "" {
		t.Fatalf("second HandleNodeGone pushed %q", got)
	}
	// A leave crosses too.
	a.Unsubscribe("p:x", ra)
	b.Unsubscribe("p:x", rb)
	if got := joinLeaves(ra); got != "" {
		t.Fatalf("an unsubscribed client got %q", got)
	}
}

// waitFor polls cond (a state another goroutine reaches), failing after a
// bound that only ends a broken test.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		runtime.Gosched()
	}
}
