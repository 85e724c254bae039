package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sori-dev/sori/internal/hub"
	"github.com/sori-dev/sori/internal/hub/historytest"
	"github.com/sori-dev/sori/internal/protocol"
)

// startJetStream runs an embedded NATS server with JetStream on a random
// loopback port.
func startJetStream(t *testing.T) *natsserver.Server {
	t.Helper()
	s, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

func openLog(t *testing.T, url, node string, streams ...Stream) *JSLog {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := OpenJSLog(ctx, nc, node, 1, streams)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

var fresh atomic.Int64

// The JetStream log obeys the hub's history contract.
func TestJSLogHistoryContract(t *testing.T) {
	url := startJetStream(t).ClientURL()
	l := openLog(t, url, "a", Stream{Namespace: "app", Size: 50}, Stream{Namespace: "odd.ns", Size: 50})
	for _, ns := range []string{"app", "odd.ns"} {
		t.Run(ns, func(t *testing.T) {
			historytest.Run(t, func(t *testing.T) historytest.Log {
				ch := fmt.Sprintf("%s:c.*>%d", ns, fresh.Add(1))
				return historytest.BackendLog(l, ch, func(i int) protocol.Publication {
					return protocol.Publication{Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)), User: "u"}
				})
			})
		})
	}
}

// Three nodes append to one channel at once through their own connections:
// the offsets are 1…n without a gap or a repeat, every node reads the same
// history, and the last size are kept.
func TestJSLogConcurrentNodes(t *testing.T) {
	url := startJetStream(t).ClientURL()
	const size, per = 40, 30
	var logs []*JSLog
	for _, id := range []string{"a", "b", "c"} {
		logs = append(logs, openLog(t, url, id, Stream{Namespace: "feed", Size: size}))
	}
	ctx := context.Background()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[uint64]string{}
		eps  = map[string]bool{}
	)
	for i, l := range logs {
		wg.Go(func() {
			for n := range per {
				data := fmt.Sprintf(`"%d-%d"`, i, n)
				p, ep, err := l.Append(ctx, "feed:x", protocol.Publication{Data: json.RawMessage(data)})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if prev, dup := seen[p.Offset]; dup {
					t.Errorf("offset %d given to %s and %s", p.Offset, prev, data)
				}
				seen[p.Offset], eps[ep] = data, true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 3*per || len(eps) != 1 {
		t.Fatalf("%d offsets in %d epochs, want %d in 1", len(seen), len(eps), 3*per)
	}
	var want string
	for i, l := range logs {
		pubs, top, err := l.Last(ctx, "feed:x", 1000)
		if err != nil || top.Offset != 3*per || len(pubs) != size || pubs[0].Offset != 3*per-size+1 {
			t.Fatalf("node %d: Last = %d publications from %v, top %+v, %v", i, len(pubs), pubs[0].Offset, top, err)
		}
		for _, p := range pubs {
			if string(p.Data) != seen[p.Offset] {
				t.Fatalf("node %d: offset %d holds %s, was appended as %s", i, p.Offset, p.Data, seen[p.Offset])
			}
		}
		got, _ := json.Marshal(pubs)
		if i == 0 {
			want = string(got)
		} else if string(got) != want {
			t.Fatalf("node %d reads another history", i)
		}
	}
}

// When a channel's whole history aged out, the next publication continues
// its epoch and offsets on a node that knew the tip (its own, or the bus's
// news): subscribers never see offsets go back.
//
// The expiry is the NATS server's own, by MaxAge. It has no event of its
// own, but a message removed while a consumer holds it unacknowledged ends
// that delivery with an advisory (MSG_TERMINATED, "Unacknowledged message
// was deleted"): a witness consumer holds the channel's messages and the
// test waits for their advisories. The witness holds them before the
// stream's MaxAge is lowered to a second (as a node started with a shorter
// history TTL does), so none can age out unseen, however slow the machine.
func TestJSLogKeepsThePositionAfterExpiry(t *testing.T) {
	url := startJetStream(t).ClientURL()
	s := Stream{Namespace: "app", Size: 10, TTL: time.Hour}
	a, b := openLog(t, url, "a", s), openLog(t, url, "b", s)
	ctx := context.Background()
	var last protocol.Publication
	var ep string
	for range 3 {
		var err error
		if last, ep, err = a.Append(ctx, "app:t", protocol.Publication{Data: json.RawMessage(`1`)}); err != nil {
			t.Fatal(err)
		}
	}
	b.Observe("app:t", ep, last.Offset) // what the bus tells b

	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	const witness = "expiry-witness"
	terminated := make(chan *nats.Msg, 16)
	sub, err := nc.ChanSubscribe("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED."+streamName("app")+"."+witness, terminated)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.Flush(); err != nil { // the server knows the interest before any advisory
		t.Fatal(err)
	}
	cons, err := js.CreateConsumer(ctx, streamName("app"), jetstream.ConsumerConfig{Name: witness,
		FilterSubject: subject("app:t"), AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(3, jetstream.FetchMaxWait(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	held := map[uint64]bool{} // stream sequences the witness holds unacknowledged
	for m := range batch.Messages() {
		md, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		held[md.Sequence.Stream] = true
	}
	if err := batch.Error(); err != nil || len(held) != 3 {
		t.Fatalf("the witness holds %v (%v), want the channel's 3 messages", held, err)
	}

	openLog(t, url, "c", Stream{Namespace: "app", Size: 10, TTL: time.Second}) // the history now ages out after 1 s
	for deadline := time.After(30 * time.Second); len(held) > 0; {
		select {
		case m := <-terminated:
			var adv struct {
				StreamSeq uint64 `json:"stream_seq"`
				Reason    string `json:"reason"`
			}
			if err := json.Unmarshal(m.Data, &adv); err != nil || adv.Reason != "Unacknowledged message was deleted" {
				t.Fatalf("advisory %s (%v), want a deleted message's", m.Data, err)
			}
			delete(held, adv.StreamSeq)
		case <-deadline:
			t.Fatalf("messages %v not aged out 30 s after MaxAge became 1 s", held)
		}
	}
	if pubs, _, err := a.Last(ctx, "app:t", 10); err != nil || len(pubs) != 0 {
		t.Fatalf("history after the expiry: %v (%v), want none", pubs, err)
	}
	for i, l := range []*JSLog{a, b} {
		_, top, err := l.Last(ctx, "app:t", 0)
		if err != nil || top.Epoch != ep || top.Offset != 3+uint64(i) {
			t.Fatalf("node %d: top after expiry %+v (%v), want %s/%d", i, top, err, ep, 3+i)
		}
		p, ep2, err := l.Append(ctx, "app:t", protocol.Publication{Data: json.RawMessage(`2`)})
		if err != nil || ep2 != ep || p.Offset != 4+uint64(i) {
			t.Fatalf("node %d: append after expiry got %s/%d (%v), want %s/%d", i, ep2, p.Offset, err, ep, 4+i)
		}
		if i == 0 {
			// The bus tells b of a's append: the stored message may age out
			// too (MaxAge is 1 s now) before b reads the top.
			b.Observe("app:t", ep2, p.Offset)
		}
	}
}

// Top (the hub's position check) reads the newest stored position, the
// same another node's appends leave: zero for an empty channel, then the
// last offset and its epoch.
func TestJSLogTop(t *testing.T) {
	url := startJetStream(t).ClientURL()
	a := openLog(t, url, "a", Stream{Namespace: "app", Size: 5})
	b := openLog(t, url, "b", Stream{Namespace: "app", Size: 5})
	ctx := context.Background()
	if top, err := b.Top(ctx, "app:t"); err != nil || top != (hub.Position{}) {
		t.Fatalf("top of an empty channel: %+v %v", top, err)
	}
	var epoch string
	for i := range 7 {
		_, e, err := a.Append(ctx, "app:t", protocol.Publication{Data: json.RawMessage(fmt.Sprint(i)), User: "u"})
		if err != nil {
			t.Fatal(err)
		}
		epoch = e
	}
	if top, err := b.Top(ctx, "app:t"); err != nil || top != (hub.Position{Epoch: epoch, Offset: 7}) {
		t.Fatalf("top after 7 appends on another node: %+v %v, want %s/7", top, err, epoch)
	}
	if _, err := b.Top(ctx, "nohistory:t"); err == nil {
		t.Fatal("Top of a namespace without a stream did not fail")
	}
}
