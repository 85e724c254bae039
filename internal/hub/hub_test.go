package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sori-dev/sori/internal/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a Subscriber that keeps what it is given.
type recorder struct {
	info protocol.ClientInfo

	mu     sync.Mutex
	frames []delivered
}

type delivered struct {
	frame       string
	conflateKey string
	publishedAt int64
}

func newRecorder(user, client string) *recorder {
	return &recorder{info: protocol.ClientInfo{User: user, Client: client}}
}

func (r *recorder) Info() protocol.ClientInfo { return r.info }

func (r *recorder) Deliver(frame []byte, key string, at int64) {
	r.mu.Lock()
	r.frames = append(r.frames, delivered{string(frame), key, at})
	r.mu.Unlock()
}

func (r *recorder) take() []delivered {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.frames
	r.frames = nil
	return out
}

// pubOffsets decodes the offsets of the publication pushes r received.
func (r *recorder) pubOffsets(t *testing.T) []uint64 {
	t.Helper()
	var out []uint64
	for _, d := range r.take() {
		var p struct {
			Push   string `json:"push"`
			Offset uint64 `json:"offset"`
		}
		if err := json.Unmarshal([]byte(d.frame), &p); err != nil {
			t.Fatalf("bad frame %q: %v", d.frame, err)
		}
		if p.Push == protocol.PushPublication {
			out = append(out, p.Offset)
		}
	}
	return out
}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newHub(t *testing.T, cfg Config) *Hub {
	t.Helper()
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func testNamespaces() []Namespace {
	return []Namespace{
		{Name: ""},
		{Name: "hist", HistorySize: 5, HistoryTTL: time.Minute},
		{Name: "pres", Presence: true, JoinLeave: true},
		{Name: "quiet", Presence: true},
		{Name: "feed", HistorySize: 4, Conflate: true},
	}
}

func publishN(t *testing.T, h *Hub, ch string, n int) Position {
	t.Helper()
	var pos Position
	for i := 0; i < n; i++ {
		var err error
		pos, err = h.Publish(context.Background(), ch, []byte(fmt.Sprintf(`{"n":%d}`, i)), "u")
		if err != nil {
			t.Fatal(err)
		}
	}
	return pos
}

func TestNewRejectsBadNamespaces(t *testing.T) {
	tests := []struct {
		name string
		nss  []Namespace
		want string
	}{
		{"duplicate", []Namespace{{Name: "a"}, {Name: "a"}}, "twice"},
		{"colon in name", []Namespace{{Name: "a:b"}}, "prefix"},
		{"bad publish rule", []Namespace{{Name: "a", Publish: "everyone"}}, "publish"},
		{"bad subscribe rule", []Namespace{{Name: "a", Subscribe: "maybe"}}, "subscribe"},
		{"negative history", []Namespace{{Name: "a", HistorySize: -1}}, "negative"},
		{"join/leave without presence", []Namespace{{Name: "a", JoinLeave: true}}, "presence"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := New(Config{Namespaces: tt.nss})
			if err == nil {
				h.Close()
				t.Fatal("New accepted the namespaces")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestPublishOffsetsAndFanOut(t *testing.T) {
	h := newHub(t, Config{Namespaces: testNamespaces()})
	a, b := newRecorder("a", "1"), newRecorder("b", "2")
	for _, s := range []*recorder{a, b} {
		if err := h.Subscribe(context.Background(), "hist:x", s, SubscribeOptions{}, func(protocol.SubscribeResult) {}); err != nil {
			t.Fatal(err)
		}
	}
	pos := publishN(t, h, "hist:x", 3)
	if pos.Offset != 3 || pos.Epoch == "" {
		t.Fatalf("position %+v, want offset 3 and an epoch", pos)
	}
	fa, fb := a.take(), b.take()
	if len(fa) != 3 || len(fb) != 3 {
		t.Fatalf("deliveries %d and %d, want 3 each", len(fa), len(fb))
	}
	for i := range fa {
		if fa[i].frame != fb[i].frame {
			t.Errorf("subscribers got different bytes for one publication: %q vs %q", fa[i].frame, fb[i].frame)
		}
		if fa[i].conflateKey != "" || fa[i].publishedAt == 0 {
			t.Errorf("delivery %+v: want no conflation key and a publish time", fa[i])
		}
	}
	if _, err := h.Publish(context.Background(), "nope:x", []byte(`1`), ""); err == nil {
		t.Error("publish into an unknown namespace succeeded")
	}
	if err := h.Subscribe(context.Background(), "hist:x", a, SubscribeOptions{}, func(protocol.SubscribeResult) {}); err != ErrAlreadySubscribed {
		t.Errorf("second subscribe: %v, want ErrAlreadySubscribed", err)
	}
}

func TestConflatingNamespacePassesKey(t *testing.T) {
	h := newHub(t, Config{Namespaces: testNamespaces()})
	r := newRecorder("a", "1")
	if err := h.Subscribe(context.Background(), "feed:btc", r, SubscribeOptions{}, func(protocol.SubscribeResult) {}); err != nil {
		t.Fatal(err)
	}
	publishN(t, h, "feed:btc", 2)
	for _, d := range r.take() {
		if d.conflateKey != "feed:btc" {
			t.Fatalf("conflation key %q, want the channel name", d.conflateKey)
		}
	}
}

func TestConcurrentPublishersKeepOffsetOrder(t *testing.T) {
	h := newHub(t, Config{Namespaces: testNamespaces()})
	r := newRecorder("a", "1")
	if err := h.Subscribe(context.Background(), "x", r, SubscribeOptions{}, func(protocol.SubscribeResult) {}); err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 200
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := h.Publish(context.Background(), "x", []byte(`1`), ""); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got := r.pubOffsets(t)
	if len(got) != writers*each {
		t.Fatalf("%d deliveries, want %d", len(got), writers*each)
	}
	for i, off := range got {
		if off != uint64(i+1) {
			t.Fatalf("delivery %d has offset %d: gap, duplicate or reorder", i, off)
		}
	}
}

func TestRecover(t *testing.T) {
	type setup struct {
		publish    int // publications before the client's position is taken
		position   int // the client's offset (publications it saw)
		after      int // publications after the client left
		advance    time.Duration
		maxRecover int
	}
	tests := []struct {
		name          string
		channel       string
		s             setup
		wrongEpoch    bool
		offsetBump    uint64 // added to the client's offset (a position from the future)
		wantRecovered bool
		wantOffsets   []uint64
	}{
		{name: "nothing missed", channel: "hist:a", s: setup{publish: 3, position: 3}, wantRecovered: true},
		{name: "missed a few", channel: "hist:a", s: setup{publish: 3, position: 3, after: 2}, wantRecovered: true, wantOffsets: []uint64{4, 5}},
		{name: "missed exactly the ring", channel: "hist:a", s: setup{publish: 2, position: 2, after: 5}, wantRecovered: true, wantOffsets: []uint64{3, 4, 5, 6, 7}},
		{name: "history overflowed", channel: "hist:a", s: setup{publish: 2, position: 2, after: 6}},
		{name: "from the very start", channel: "hist:a", s: setup{position: 0, after: 2}, wantRecovered: true, wantOffsets: []uint64{1, 2}},
		{name: "wrong epoch", channel: "hist:a", s: setup{publish: 2, position: 2, after: 1}, wrongEpoch: true},
		{name: "offset from the future", channel: "hist:a", s: setup{publish: 2, position: 2}, offsetBump: 5},
		{name: "history expired", channel: "hist:a", s: setup{publish: 2, position: 2, after: 2, advance: 2 * time.Minute}},
		{name: "over the recovery limit", channel: "hist:a", s: setup{publish: 1, position: 1, after: 3, maxRecover: 2}},
		{name: "at the recovery limit", channel: "hist:a", s: setup{publish: 1, position: 1, after: 2, maxRecover: 2}, wantRecovered: true, wantOffsets: []uint64{2, 3}},
		{name: "no history, nothing missed", channel: "plain", s: setup{publish: 2, position: 2}, wantRecovered: true},
		{name: "no history, missed one", channel: "plain", s: setup{publish: 2, position: 2, after: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{now: time.Unix(1_700_000_000, 0)}
			h := newHub(t, Config{Namespaces: testNamespaces(), Now: clk.Now, MaxRecover: tt.s.maxRecover})
			first := newRecorder("a", "1")
			var pos Position
			if err := h.Subscribe(context.Background(), tt.channel, first, SubscribeOptions{}, func(r protocol.SubscribeResult) {
				pos = Position{r.Epoch, r.Offset}
			}); err != nil {
				t.Fatal(err)
			}
			if tt.s.publish > 0 {
				publishN(t, h, tt.channel, tt.s.publish)
			}
			seen := first.pubOffsets(t)
			if tt.s.position > 0 {
				pos.Offset = seen[tt.s.position-1]
			}
			h.Unsubscribe(tt.channel, first)
			if tt.s.after > 0 {
				publishN(t, h, tt.channel, tt.s.after)
			}
			clk.Advance(tt.s.advance)
			if tt.wrongEpoch {
				pos.Epoch = "other"
			}
			pos.Offset += tt.offsetBump

			again := newRecorder("a", "2")
			var res protocol.SubscribeResult
			if err := h.Subscribe(context.Background(), tt.channel, again, SubscribeOptions{Recover: true, Since: pos}, func(r protocol.SubscribeResult) {
				res = r
			}); err != nil {
				t.Fatal(err)
			}
			if res.Recovered != tt.wantRecovered {
				t.Fatalf("recovered %v, want %v (result %+v)", res.Recovered, tt.wantRecovered, res)
			}
			if got := offsets(res.Publications); !equalOffsets(got, tt.wantOffsets) && !(len(got) == 0 && len(tt.wantOffsets) == 0) {
				t.Fatalf("recovered offsets %v, want %v", got, tt.wantOffsets)
			}
			if !res.Recovered && len(res.Publications) > 0 {
				t.Fatalf("publications %v handed out without recovered=true: a silent gap", offsets(res.Publications))
			}
			// Live publications continue right after the recovered ones.
			publishN(t, h, tt.channel, 1)
			wantNext := uint64(tt.s.publish + tt.s.after + 1)
			if live := again.pubOffsets(t); len(live) != 1 || live[0] != wantNext {
				t.Fatalf("live offsets %v, want [%d]", live, wantNext)
			}
		})
	}
}

// TestSubscribeReplyPrecedesLivePublications checks the ordering promise of
// Subscribe's done callback under concurrent publishing: every publication a
// subscriber gets as a push comes after the ones in its recovery reply, with
// no gap and no duplicate.
func TestSubscribeReplyPrecedesLivePublications(t *testing.T) {
	h := newHub(t, Config{Namespaces: []Namespace{{Name: "h", HistorySize: 100000}}, MaxRecover: 100000})
	first := newRecorder("a", "1")
	var pos Position
	_ = h.Subscribe(context.Background(), "h:x", first, SubscribeOptions{}, func(r protocol.SubscribeResult) { pos = Position{r.Epoch, r.Offset} })
	h.Unsubscribe("h:x", first)

	// The publisher is paced by credits, so that however slowly this
	// goroutine runs, the publications of all rounds (20 × perRound) stay far
	// inside the history (and recovery) size: recovery must always succeed,
	// and a failure means an ordering bug, not a slow machine.
	const perRound = 200
	credits := make(chan struct{}, perRound)
	var published atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-credits:
				if _, err := h.Publish(context.Background(), "h:x", []byte(`1`), ""); err != nil {
					t.Error(err)
				}
				published.Add(1)
			}
		}
	}()
	for i := 0; i < 20; i++ {
		r := newRecorder("a", fmt.Sprint(i))
		for j := 0; j < perRound; j++ {
			credits <- struct{}{} // the publisher starts on these while we subscribe
		}
		var recovered []uint64
		err := h.Subscribe(context.Background(), "h:x", r, SubscribeOptions{Recover: true, Since: pos}, func(res protocol.SubscribeResult) {
			if !res.Recovered {
				t.Errorf("not recovered: epoch %s offset %d", res.Epoch, res.Offset)
			}
			recovered = offsets(res.Publications)
			r.Deliver([]byte("reply"), "", 0) // stands for the reply, queued before any later push
		})
		if err != nil {
			t.Fatal(err)
		}
		for published.Load() < int64((i+1)*perRound) { // this round's publications are all out
			runtime.Gosched()
		}
		h.Unsubscribe("h:x", r)
		frames := r.take()
		if len(frames) == 0 || frames[0].frame != "reply" {
			t.Fatalf("a publication was delivered before the subscribe reply")
		}
		all := recovered
		for _, d := range frames[1:] {
			var p struct{ Offset uint64 }
			_ = json.Unmarshal([]byte(d.frame), &p)
			all = append(all, p.Offset)
		}
		for j, off := range all {
			if off != pos.Offset+uint64(j)+1 {
				t.Fatalf("round %d: offset %d at %d of %d, want %d (gap or duplicate)", i, off, j, len(all), pos.Offset+uint64(j)+1)
			}
		}
		if len(all) > 0 { // the next client resumes where this one stopped
			pos.Offset = all[len(all)-1]
		}
		if want := uint64((i + 1) * perRound); pos.Offset != want {
			t.Fatalf("round %d: the stream ends at %d, want %d", i, pos.Offset, want)
		}
	}
	close(stop)
	wg.Wait()
}

func TestHistory(t *testing.T) {
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	h := newHub(t, Config{Namespaces: testNamespaces(), Now: clk.Now})
	ctx := context.Background()
	top := publishN(t, h, "hist:a", 7) // ring keeps 3..7

	pubs, got, ok, err := h.History(ctx, "hist:a", 2, nil)
	if err != nil || !ok || got != top || !equalOffsets(offsets(pubs), []uint64{6, 7}) {
		t.Fatalf("last 2: %v %+v %v %v", offsets(pubs), got, ok, err)
	}
	pubs, _, ok, _ = h.History(ctx, "hist:a", 0, &Position{top.Epoch, 4})
	if !ok || !equalOffsets(offsets(pubs), []uint64{5, 6, 7}) {
		t.Fatalf("since 4: %v %v", offsets(pubs), ok)
	}
	if _, _, ok, _ = h.History(ctx, "hist:a", 0, &Position{top.Epoch, 1}); ok {
		t.Fatal("since 1 succeeded although 2 is gone")
	}
	if _, _, ok, _ = h.History(ctx, "hist:a", 0, &Position{"other", 6}); ok {
		t.Fatal("since another epoch succeeded")
	}
	if pubs, _, ok, _ = h.History(ctx, "hist:a", 0, &Position{top.Epoch, 7}); !ok || len(pubs) != 0 {
		t.Fatalf("since the top: %v %v, want nothing and ok", offsets(pubs), ok)
	}
	clk.Advance(2 * time.Minute)
	if pubs, _, ok, _ = h.History(ctx, "hist:a", 0, nil); !ok || len(pubs) != 0 {
		t.Fatalf("after the TTL: %v %v, want nothing", offsets(pubs), ok)
	}
	if _, _, ok, _ = h.History(ctx, "hist:a", 0, &Position{top.Epoch, 6}); ok {
		t.Fatal("since 6 succeeded although 7 expired")
	}
	if _, _, _, err = h.History(ctx, "nope:a", 0, nil); err == nil {
		t.Fatal("history of an unknown namespace succeeded")
	}
}

func TestPresenceAndJoinLeave(t *testing.T) {
	h := newHub(t, Config{Namespaces: testNamespaces()})
	ctx := context.Background()
	alice, bob := newRecorder("alice", "c1"), newRecorder("bob", "c2")
	_ = h.Subscribe(ctx, "pres:room", alice, SubscribeOptions{}, func(protocol.SubscribeResult) {})
	_ = h.Subscribe(ctx, "pres:room", bob, SubscribeOptions{}, func(protocol.SubscribeResult) {})
	if got := h.Presence("pres:room"); len(got) != 2 {
		t.Fatalf("presence %v, want alice and bob", got)
	}
	if f := alice.take(); len(f) != 1 || f[0].frame != `{"push":"join","channel":"pres:room","info":{"user":"bob","client":"c2"}}` {
		t.Fatalf("alice got %v, want bob's join", f)
	}
	if f := bob.take(); len(f) != 0 {
		t.Fatalf("bob got %v about his own join", f)
	}
	if !h.Unsubscribe("pres:room", bob) || h.Unsubscribe("pres:room", bob) {
		t.Fatal("Unsubscribe must report true once, then false")
	}
	if f := alice.take(); len(f) != 1 || !strings.Contains(f[0].frame, `"push":"leave"`) {
		t.Fatalf("alice got %v, want bob's leave", f)
	}
	if got := h.Presence("pres:room"); len(got) != 1 || got[0].User != "alice" {
		t.Fatalf("presence %v, want alice only", got)
	}
	// Presence without join/leave tracks but does not push.
	_ = h.Subscribe(ctx, "quiet:room", alice, SubscribeOptions{}, func(protocol.SubscribeResult) {})
	_ = h.Subscribe(ctx, "quiet:room", bob, SubscribeOptions{}, func(protocol.SubscribeResult) {})
	if f := alice.take(); len(f) != 0 || len(h.Presence("quiet:room")) != 2 {
		t.Fatalf("quiet namespace: pushes %v, presence %v", f, h.Presence("quiet:room"))
	}
	if got := h.Presence("nobody:here"); got == nil || len(got) != 0 {
		t.Fatalf("presence of an unknown channel %v, want an empty list", got)
	}
}

func TestSweepKeepsChannelsWithLiveHistory(t *testing.T) {
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	h := newHub(t, Config{Namespaces: testNamespaces(), Now: clk.Now, IdleChannels: time.Hour})
	ctx := context.Background()
	hist := publishN(t, h, "hist:a", 2)
	plain := publishN(t, h, "plain", 2)
	clk.Advance(30 * time.Second) // idle, but history (TTL 1m) is still live
	_ = h.Subscribe(ctx, "hist:b", newRecorder("x", "y"), SubscribeOptions{}, func(protocol.SubscribeResult) {})
	clk.Advance(2 * time.Hour)
	h.sweep()

	// The plain channel was dropped: it comes back with a new epoch, so a
	// client that resumes learns it cannot recover instead of seeing a gap.
	var res protocol.SubscribeResult
	_ = h.Subscribe(ctx, "plain", newRecorder("a", "1"), SubscribeOptions{Recover: true, Since: plain}, func(r protocol.SubscribeResult) { res = r })
	if res.Epoch == plain.Epoch || res.Recovered {
		t.Fatalf("swept channel kept epoch %q (recovered %v)", res.Epoch, res.Recovered)
	}
	// hist:a's history expired, so it went too; hist:b has a subscriber and stays.
	_ = h.Subscribe(ctx, "hist:a", newRecorder("a", "1"), SubscribeOptions{Recover: true, Since: hist}, func(r protocol.SubscribeResult) { res = r })
	if res.Recovered {
		t.Fatalf("recovered %+v from an expired, swept channel", res)
	}
	if len(h.Subscribers("hist:b")) != 1 {
		t.Fatal("a channel with a subscriber was swept")
	}
}

func TestSweepKeepsUnexpiredHistory(t *testing.T) {
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	h := newHub(t, Config{Namespaces: []Namespace{{Name: "keep", HistorySize: 4}}, Now: clk.Now, IdleChannels: time.Minute})
	pos := publishN(t, h, "keep:a", 2)
	clk.Advance(time.Hour)
	h.sweep()
	var res protocol.SubscribeResult
	_ = h.Subscribe(context.Background(), "keep:a", newRecorder("a", "1"), SubscribeOptions{Recover: true, Since: Position{pos.Epoch, 1}}, func(r protocol.SubscribeResult) { res = r })
	if !res.Recovered || !equalOffsets(offsets(res.Publications), []uint64{2}) {
		t.Fatalf("history without TTL lost by the sweep: %+v", res)
	}
}

// memBackend is an in-memory Backend, the twin of a durable store.
type memBackend struct {
	mu    sync.Mutex
	epoch string
	pubs  map[string][]protocol.Publication
}

func (b *memBackend) Append(_ context.Context, ch string, p protocol.Publication) (protocol.Publication, string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p.Offset = uint64(len(b.pubs[ch]) + 1)
	b.pubs[ch] = append(b.pubs[ch], p)
	return p, b.epoch, nil
}

func (b *memBackend) Since(_ context.Context, ch, epoch string, off uint64, limit int) ([]protocol.Publication, Position, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	all := b.pubs[ch]
	top := Position{b.epoch, uint64(len(all))}
	if epoch != b.epoch || off > top.Offset {
		return nil, top, false, nil
	}
	out := all[off:]
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return append([]protocol.Publication(nil), out...), top, true, nil
}

func (b *memBackend) Last(_ context.Context, ch string, limit int) ([]protocol.Publication, Position, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	all := b.pubs[ch]
	if len(all) > limit {
		all = all[len(all)-limit:]
	}
	return append([]protocol.Publication(nil), all...), Position{b.epoch, uint64(len(b.pubs[ch]))}, nil
}

func TestBackendRecovery(t *testing.T) {
	h := newHub(t, Config{Namespaces: []Namespace{{Name: "durable"}}, MaxRecover: 3})
	b := &memBackend{epoch: "E", pubs: map[string][]protocol.Publication{}}
	h.SetBackend("durable", b)
	ns, _ := h.NamespaceOf("durable:x")
	if !h.KeepsHistory(ns) {
		t.Fatal("a namespace with a backend keeps history")
	}
	pos := publishN(t, h, "durable:x", 5)
	if pos != (Position{"E", 5}) {
		t.Fatalf("position %+v, want E/5", pos)
	}
	tests := []struct {
		since         Position
		wantRecovered bool
		want          []uint64
	}{
		{Position{"E", 5}, true, nil},
		{Position{"E", 2}, true, []uint64{3, 4, 5}},
		{Position{"E", 1}, false, nil}, // 4 missed > MaxRecover 3
		{Position{"X", 4}, false, nil},
	}
	for i, tt := range tests {
		var res protocol.SubscribeResult
		err := h.Subscribe(context.Background(), "durable:x", newRecorder("u", fmt.Sprint(i)), SubscribeOptions{Recover: true, Since: tt.since}, func(r protocol.SubscribeResult) { res = r })
		if err != nil {
			t.Fatal(err)
		}
		if res.Recovered != tt.wantRecovered || !equalOffsets(offsets(res.Publications), tt.want) && len(tt.want) > 0 || res.Epoch != "E" || res.Offset != 5 {
			t.Errorf("since %+v: %+v, want recovered %v with %v", tt.since, res, tt.wantRecovered, tt.want)
		}
		if !res.Recovered && len(res.Publications) > 0 {
			t.Errorf("since %+v: publications without recovered=true", tt.since)
		}
	}
	pubs, top, ok, err := h.History(context.Background(), "durable:x", 2, nil)
	if err != nil || !ok || top.Offset != 5 || !equalOffsets(offsets(pubs), []uint64{4, 5}) {
		t.Fatalf("backend history: %v %+v %v %v", offsets(pubs), top, ok, err)
	}
}

// channelCount is how many channels the hub holds.
func channelCount(h *Hub) int {
	n := 0
	for i := range h.shards {
		h.shards[i].mu.RLock()
		n += len(h.shards[i].channels)
		h.shards[i].mu.RUnlock()
	}
	return n
}

// Reading a channel that does not exist (history, presence, unsubscribe,
// subscribers) creates nothing, so reads cannot fill memory with channels.
func TestReadsCreateNoChannel(t *testing.T) {
	h := newHub(t, Config{Namespaces: testNamespaces()})
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		pubs, top, ok, err := h.History(ctx, fmt.Sprintf("hist:fresh%d", i), 0, nil)
		if err != nil || !ok || len(pubs) != 0 || top != (Position{}) {
			t.Fatalf("history of a fresh channel: %v %+v %v %v", pubs, top, ok, err)
		}
		if _, _, ok, _ := h.History(ctx, fmt.Sprintf("hist:fresh%d", i), 0, &Position{"E", 3}); ok {
			t.Fatal("a position in a channel that does not exist was recoverable")
		}
		h.Presence(fmt.Sprintf("pres:fresh%d", i))
		h.Unsubscribe(fmt.Sprintf("pres:fresh%d", i), newRecorder("u", "c"))
		h.Subscribers(fmt.Sprintf("fresh%d", i))
	}
	if n := channelCount(h); n != 0 {
		t.Fatalf("%d channels after reads only", n)
	}
}

// One rule for history limits, applied by the hub for every caller: 0 means
// the maximum, and so does anything larger; ring and backend alike.
func TestHistoryLimitClamp(t *testing.T) {
	h := newHub(t, Config{Namespaces: []Namespace{{Name: "hist", HistorySize: 50}, {Name: "durable"}}, MaxHistory: 4})
	h.SetBackend("durable", &memBackend{epoch: "E", pubs: map[string][]protocol.Publication{}})
	ctx := context.Background()
	for _, ch := range []string{"hist:a", "durable:a"} {
		publishN(t, h, ch, 10)
		for _, limit := range []int{0, -1, 4, 5, 1000} {
			pubs, _, ok, err := h.History(ctx, ch, limit, nil)
			if err != nil || !ok || !equalOffsets(offsets(pubs), []uint64{7, 8, 9, 10}) {
				t.Errorf("%s limit %d: %v %v %v, want the newest 4", ch, limit, offsets(pubs), ok, err)
			}
		}
		pubs, top, _, _ := h.History(ctx, ch, 0, nil)
		_ = pubs
		got, _, ok, err := h.History(ctx, ch, 0, &Position{top.Epoch, 2})
		if err != nil || !ok || !equalOffsets(offsets(got), []uint64{3, 4, 5, 6}) {
			t.Errorf("%s since 2, limit 0: %v %v %v, want 3..6", ch, offsets(got), ok, err)
		}
		if got, _, _, _ := h.History(ctx, ch, 2, nil); !equalOffsets(offsets(got), []uint64{9, 10}) {
			t.Errorf("%s limit 2: %v", ch, offsets(got))
		}
	}
}

// An owner may keep only so many channels alive; the count falls when the
// janitor removes them. The server (no owner) is not bounded.
func TestOwnerChannelBound(t *testing.T) {
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	h := newHub(t, Config{Namespaces: testNamespaces(), Now: clk.Now, MaxOwnerChannels: 3})
	ctx := context.Background()
	r := newRecorder("mallory", "c")
	for i := 0; i < 3; i++ {
		if err := h.Subscribe(ctx, fmt.Sprintf("x%d", i), r, SubscribeOptions{Owner: "mallory"}, func(protocol.SubscribeResult) {}); err != nil {
			t.Fatal(err)
		}
	}
	err := h.Subscribe(ctx, "x3", r, SubscribeOptions{Owner: "mallory"}, func(protocol.SubscribeResult) {})
	if !errors.Is(err, ErrOwnerLimit) {
		t.Fatalf("fourth channel: %v, want ErrOwnerLimit", err)
	}
	if _, err := h.PublishAs(ctx, "x4", []byte(`{}`), "mallory", "mallory"); !errors.Is(err, ErrOwnerLimit) {
		t.Fatalf("publish creating a fourth channel: %v, want ErrOwnerLimit", err)
	}
	// Existing channels are not charged again; others are not affected.
	if _, err := h.PublishAs(ctx, "x0", []byte(`{}`), "mallory", "mallory"); err != nil {
		t.Fatal(err)
	}
	if err := h.Subscribe(ctx, "x3", newRecorder("bob", "b"), SubscribeOptions{Owner: "bob"}, func(protocol.SubscribeResult) {}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Publish(ctx, "server-made", []byte(`{}`), ""); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		h.Unsubscribe(fmt.Sprintf("x%d", i), r)
	}
	clk.Advance(2 * time.Minute)
	h.sweep()
	if ch, _ := h.owners.usage("mallory"); ch != 0 {
		t.Fatalf("%d channels still charged after the sweep", ch)
	}
	if err := h.Subscribe(ctx, "x5", r, SubscribeOptions{Owner: "mallory"}, func(protocol.SubscribeResult) {}); err != nil {
		t.Fatalf("after the sweep: %v", err)
	}
}

// An owner's publications may hold only so many bytes in memory rings; bytes
// pushed out of a ring or expired are given back.
func TestOwnerHistoryBytesBound(t *testing.T) {
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	h := newHub(t, Config{Namespaces: testNamespaces(), Now: clk.Now, MaxOwnerBytes: 100})
	ctx := context.Background()
	data := []byte(`"` + strings.Repeat("x", 18) + `"`) // 20 bytes
	for i := 0; i < 5; i++ {
		if _, err := h.PublishAs(ctx, fmt.Sprintf("hist:%d", i), data, "m", "m"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.PublishAs(ctx, "hist:5", data, "m", "m"); !errors.Is(err, ErrOwnerLimit) {
		t.Fatalf("sixth 20 bytes: %v, want ErrOwnerLimit", err)
	}
	if _, b := h.owners.usage("m"); b != 100 {
		t.Fatalf("%d bytes charged, want 100", b)
	}
	// Channels without history cost no bytes.
	if _, err := h.PublishAs(ctx, "plain", data, "m", "m"); err != nil {
		t.Fatal(err)
	}
	// The ring of hist:0 keeps 5: the server's publications push m's out.
	publishN(t, h, "hist:0", 5)
	if _, b := h.owners.usage("m"); b != 80 {
		t.Fatalf("%d bytes charged after a push-out, want 80", b)
	}
	clk.Advance(2 * time.Minute) // past the TTL
	h.History(ctx, "hist:1", 0, nil)
	h.sweep()
	if ch, b := h.owners.usage("m"); ch != 0 || b != 0 {
		t.Fatalf("after expiry: %d channels, %d bytes charged", ch, b)
	}
}

// Admit runs under the channel lock before the subscriber is added; its
// error aborts the subscribe and leaves nothing behind.
func TestSubscribeAdmit(t *testing.T) {
	h := newHub(t, Config{Namespaces: testNamespaces()})
	ctx := context.Background()
	r := newRecorder("u", "c")
	refused := errors.New("no longer a member")
	replied := false
	err := h.Subscribe(ctx, "pres:room", r, SubscribeOptions{Admit: func() error { return refused }}, func(protocol.SubscribeResult) { replied = true })
	if !errors.Is(err, refused) || replied {
		t.Fatalf("refused admit: %v (replied %v)", err, replied)
	}
	if len(h.Subscribers("pres:room")) != 0 || len(h.Presence("pres:room")) != 0 {
		t.Fatal("a refused subscriber was registered")
	}
	if err := h.Subscribe(ctx, "pres:room", r, SubscribeOptions{Admit: func() error { return nil }}, func(protocol.SubscribeResult) {}); err != nil {
		t.Fatal(err)
	}
	if len(h.Subscribers("pres:room")) != 1 {
		t.Fatal("admitted subscriber missing")
	}
}

// Close may be called twice, also at once.
func TestCloseTwiceConcurrently(t *testing.T) {
	h, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); h.Close() }()
	}
	wg.Wait()
	h.Close()
}
