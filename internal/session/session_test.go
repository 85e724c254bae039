package session

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sori-dev/sori/internal/hub"
	"github.com/sori-dev/sori/internal/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// stalledTransport is a Transport whose client never reads: it records wakes
// and closes but never drains the session's queue.
type stalledTransport struct {
	mu     sync.Mutex
	wakes  int
	closed []protocol.Disconnect
}

func (t *stalledTransport) Kind() string { return "test" }
func (t *stalledTransport) Wake()        { t.mu.Lock(); t.wakes++; t.mu.Unlock() }
func (t *stalledTransport) Ping()        {}
func (t *stalledTransport) Close(d protocol.Disconnect) {
	t.mu.Lock()
	t.closed = append(t.closed, d)
	t.mu.Unlock()
}

func (t *stalledTransport) closes() []protocol.Disconnect {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]protocol.Disconnect(nil), t.closed...)
}

func newNode(t testing.TB, cfg Config) (*Node, *hub.Hub) {
	t.Helper()
	h, err := hub.New(hub.Config{Namespaces: []hub.Namespace{
		{Name: "", Anonymous: true},
		{Name: "feed", HistorySize: 4, Anonymous: true, Conflate: true, Publish: hub.PublishServer},
	}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.AllowAnonymous = true
	n := NewNode(cfg, h, nil, nil, nil)
	t.Cleanup(func() { n.Close(); h.Close() })
	return n, h
}

// connected returns an anonymous session on a stalled transport whose queue
// has been emptied of the connect reply.
func connected(t testing.TB, n *Node, ip string) (*Session, *stalledTransport) {
	t.Helper()
	tr := &stalledTransport{}
	s, refused := n.Accept(tr, ip)
	if s == nil {
		t.Fatal(refused)
	}
	t.Cleanup(func() { s.Closed(protocol.DisconnectNormal) })
	if d, end := s.Handle([]byte(`{"id":1,"op":"connect"}`)); end {
		t.Fatalf("connect: %v", d)
	}
	expectReply(t, s, 1)
	return s, tr
}

// expectReply drains s and requires exactly one reply, to id, without error.
func expectReply(t testing.TB, s *Session, id uint64) map[string]any {
	t.Helper()
	fs := s.Drain()
	if len(fs) != 1 {
		t.Fatalf("%d frames queued, want one reply", len(fs))
	}
	var r struct {
		ID     uint64          `json:"id"`
		Result map[string]any  `json:"result"`
		Error  *protocol.Error `json:"error"`
	}
	if err := json.Unmarshal(fs[0].Data, &r); err != nil || r.ID != id || r.Error != nil {
		t.Fatalf("reply %s, want a result for %d", fs[0].Data, id)
	}
	return r.Result
}

func TestConflatingChannelKeepsLatestValueForStalledReader(t *testing.T) {
	n, h := newNode(t, Config{QueueBytes: 4096})
	s, tr := connected(t, n, "1.1.1.1")
	for _, ch := range []string{"feed:btc", "feed:eth"} {
		s.Handle([]byte(fmt.Sprintf(`{"id":2,"op":"subscribe","channel":%q}`, ch)))
		expectReply(t, s, 2)
	}
	// Far more than the queue holds, but only two keys.
	for i := 1; i <= 5000; i++ {
		for _, ch := range []string{"feed:btc", "feed:eth"} {
			if _, err := h.Publish(context.Background(), ch, []byte(fmt.Sprintf(`{"price":%d}`, i)), ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	if c := tr.closes(); len(c) != 0 {
		t.Fatalf("conflating reader was disconnected: %v", c)
	}
	fs := s.Drain()
	got := map[string]float64{}
	for _, f := range fs {
		var p struct {
			Channel string
			Offset  uint64
			Data    struct{ Price float64 }
		}
		if err := json.Unmarshal(f.Data, &p); err != nil {
			t.Fatal(err)
		}
		got[p.Channel] = p.Data.Price
	}
	if len(fs) != 2 || got["feed:btc"] != 5000 || got["feed:eth"] != 5000 {
		t.Fatalf("queued %d frames %v, want the latest value of each channel", len(fs), got)
	}
}

func TestStalledReaderOfPlainChannelIsSlowConsumer(t *testing.T) {
	n, h := newNode(t, Config{QueueBytes: 4096})
	slow, tr := connected(t, n, "1.1.1.1")
	fast, _ := connected(t, n, "1.1.1.2")
	for _, s := range []*Session{slow, fast} {
		s.Handle([]byte(`{"id":2,"op":"subscribe","channel":"room"}`))
		expectReply(t, s, 2)
	}
	delivered := 0
	for i := 1; i <= 500; i++ {
		if _, err := h.Publish(context.Background(), "room", []byte(fmt.Sprintf(`{"n":%d}`, i)), ""); err != nil {
			t.Fatal(err)
		}
		delivered += len(fast.Drain()) // the fast reader keeps up
	}
	if delivered != 500 {
		t.Fatalf("fast reader got %d of 500", delivered)
	}
	c := tr.closes()
	if len(c) != 1 || c[0].Code != protocol.DisconnectSlowConsumer.Code || !c[0].Reconnect {
		t.Fatalf("slow reader closes %v, want exactly one 4001 with reconnect", c)
	}
	if slow.Pending() {
		t.Fatal("slow consumer's queue still holds frames after the disconnect")
	}
}

func TestAcceptLimits(t *testing.T) {
	n, _ := newNode(t, Config{MaxConnections: 3, MaxConnectionsPerIP: 2})
	var sessions []*Session
	// accept returns the refusal's code, 0 when the session was accepted.
	accept := func(ip string) (int, protocol.Disconnect) {
		s, refused := n.Accept(&stalledTransport{}, ip)
		if s != nil {
			sessions = append(sessions, s)
			return 0, refused
		}
		return refused.Code, refused
	}
	for _, step := range []struct {
		ip       string
		wantCode int
	}{{"a", 0}, {"a", 0}, {"a", 4503}, {"b", 0}, {"c", 4503}} {
		code, refused := accept(step.ip)
		if code != step.wantCode {
			t.Fatalf("accept from %s: %v, want code %d", step.ip, refused, step.wantCode)
		}
	}
	sessions[0].Closed(protocol.DisconnectNormal)
	if code, refused := accept("a"); code != 0 {
		t.Fatalf("a closed connection did not free its slots: %v", refused)
	}
	if n.Count() != 3 {
		t.Fatalf("count %d, want 3", n.Count())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	go func() {
		for _, s := range sessions {
			s.Closed(protocol.DisconnectShutdown) // the transports' part
		}
	}()
	if err := n.Shutdown(ctx, protocol.DisconnectShutdown); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if code, refused := accept("z"); code != 1001 {
		t.Fatalf("accept while draining: %v, want 1001", refused)
	}
}

func TestRateLimitStrikes(t *testing.T) {
	n, _ := newNode(t, Config{CommandRate: 0.001, CommandBurst: 3})
	s, tr := connected(t, n, "1.1.1.1") // connect used one token
	var codes []int
	for i := 2; ; i++ {
		d, end := s.Handle([]byte(fmt.Sprintf(`{"id":%d,"op":"ping"}`, i)))
		for _, f := range s.Drain() {
			var r struct{ Error *protocol.Error }
			_ = json.Unmarshal(f.Data, &r)
			code := 0
			if r.Error != nil {
				code = r.Error.Code
			}
			codes = append(codes, code)
		}
		if end {
			if d.Code != protocol.DisconnectRateLimit.Code {
				t.Fatalf("disconnect %v, want 4505", d)
			}
			break
		}
		if i > 100 {
			t.Fatal("no disconnect after 100 rate-limited commands")
		}
	}
	// Two pings fit the burst, then every command gets 109 until the
	// strikes exceed the burst.
	want := []int{0, 0, 109, 109, 109, 109}
	if fmt.Sprint(codes) != fmt.Sprint(want) {
		t.Fatalf("reply codes %v, want %v", codes, want)
	}
	_ = tr
}

// Close may be called twice, also at once; no heartbeat runs after it.
func TestNodeCloseTwiceConcurrently(t *testing.T) {
	n, _ := newNode(t, Config{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); n.Close() }()
	}
	wg.Wait()
	n.Close()
}
