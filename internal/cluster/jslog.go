package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sori-dev/sori/internal/hub"
	"github.com/sori-dev/sori/internal/protocol"
)

// Stream is how one namespace's channels keep their history in JetStream.
type Stream struct {
	Namespace string
	Size      int           // publications kept per channel (MaxMsgsPerSubject)
	TTL       time.Duration // how long a publication is kept (MaxAge); 0 = until pushed out
}

// JSLog is the log of record of the channels of namespaces that keep
// history in memory on a single node (app:, feed:, user:, …): one JetStream
// stream per namespace, one subject per channel. It implements hub.Backend,
// so the hub gives those channels the same cluster treatment as chat rooms:
// offsets come from the log, the bus carries the news, every node delivers
// in offset order and reads holes, history and resumes from the stream,
// which outlives the node that published.
//
// Offsets: each stored message carries its channel's epoch and offset.
// Append reads the subject's last message (cached per node), and stores the
// next offset with JetStream's per-subject compare-and-set (expected last
// subject sequence), so two nodes appending to one channel at once cannot
// take the same offset: the loser re-reads the last message and retries.
// A channel with no message yet starts a new random epoch at offset 1.
//
// The tip cache also keeps a channel's position after its whole history
// aged out (MaxAge), and the bus updates it (Observe) on every node, so the
// next publication continues the epoch instead of restarting at offset 1
// under a new one (clients drop offsets they already passed).
//
// Every request to JetStream is bounded by requestTimeout, whatever the
// caller's context (see there).
//
// Safe for concurrent use. Lock order: JSLog.mu, then tip.mu is never held
// with mu (mu only guards the map).
type JSLog struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	nodeID  string
	streams map[string]Stream // by namespace
	ids     atomic.Uint64
	timeout time.Duration // of each request; requestTimeout (tests shorten it)

	mu   sync.Mutex
	tips map[string]*tip // by channel; bounded by maxTips
}

// requestTimeout bounds each JetStream request of the log. The hub calls
// Append without its caller's cancellation (once the log may have stored a
// publication, the hub must learn its offset), and a request can lose its
// reply for good: JetStream drops what it took in but had not handled when
// its server shuts down, and nats.go keeps such a request waiting across
// the reconnection. An unbounded read there held the channel's tip lock for
// ever, and every later publish of the channel on that node waited behind
// it (TestRestartNATSUnderLoadJetStream, 1 run in 4). Bounded, the append
// fails (the client is told to try again) and the next one reads the log
// afresh. 5 s is nats.go's own JetStream default.
const requestTimeout = 5 * time.Second

// errLogDown is what a publish, subscribe or history call of a channel kept
// in JetStream answers when JetStream could not be reached or did not
// answer in time (a NATS restart): the client may try again, on this node
// or another. A publish so refused may have been stored all the same.
var errLogDown = protocol.ErrStoreDown.WithMessage("the channel's history log (NATS JetStream) is unreachable from this node: try again shortly")

// down marks err, a failed exchange with JetStream, as errLogDown for the
// client (the session answers the *protocol.Error it finds in the chain).
func down(err error) error { return fmt.Errorf("%w (%w)", err, errLogDown) }

// maxTips bounds the tip cache; when full, an arbitrary idle entry goes (its
// channel restarts with a new epoch if its whole history also aged out).
const maxTips = 200_000

// tip is the node's view of a channel's newest stored message.
type tip struct {
	mu     sync.Mutex // held across an Append's compare-and-set
	seq    uint64     // stream sequence of the newest message; 0 = none stored
	epoch  string     // "" = never seen
	offset uint64
	loaded bool   // seq was read from the stream at least once
	lastID string // id of the newest message, as last read (a lost ack's check)
}

// record is a stored publication.
type record struct {
	Epoch string               `json:"e"`
	ID    string               `json:"id"`
	Pub   protocol.Publication `json:"p"`
}

// streamPrefix is the subject prefix of the history streams.
const streamPrefix = "sori.h."

// OpenJSLog creates (or updates to the given limits) one stream per
// namespace on the JetStream of nc, with replicas copies of each message
// (1 on a single NATS server; 3 in a NATS cluster so that the history
// survives the loss of one NATS server).
func OpenJSLog(ctx context.Context, nc *nats.Conn, nodeID string, replicas int, streams []Stream) (*JSLog, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("cluster: jetstream: %w", err)
	}
	if replicas <= 0 {
		replicas = 1
	}
	l := &JSLog{nc: nc, js: js, nodeID: nodeID, streams: map[string]Stream{}, tips: map[string]*tip{}, timeout: requestTimeout}
	for _, s := range streams {
		if s.Size <= 0 {
			return nil, fmt.Errorf("cluster: stream of namespace %q: size must be positive", s.Namespace)
		}
		cfg := jetstream.StreamConfig{
			Name:              streamName(s.Namespace),
			Description:       "Sori history of namespace " + strconv.Quote(s.Namespace),
			Subjects:          []string{streamPrefix + nsToken(s.Namespace) + ".>"},
			Storage:           jetstream.FileStorage,
			Replicas:          replicas,
			MaxMsgsPerSubject: int64(s.Size),
			MaxAge:            s.TTL,
			Discard:           jetstream.DiscardOld,
			AllowDirect:       true,
		}
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return nil, fmt.Errorf("cluster: create stream %s (is JetStream enabled on the NATS servers?): %w", cfg.Name, err)
		}
		l.streams[s.Namespace] = s
	}
	return l, nil
}

// streamName is the JetStream stream of a namespace.
func streamName(ns string) string { return "SORI_H_" + nsToken(ns) }

// nsToken is a namespace as a subject token and stream-name part: hex
// unless it is plain letters and digits, so no name can collide.
func nsToken(ns string) string {
	for _, r := range ns {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return "x" + hex.EncodeToString([]byte(ns))
		}
	}
	if ns == "" {
		return "x"
	}
	return ns
}

// subject is a channel's subject: channel names may hold characters that
// subjects give a meaning to ('.', '*', '>'), so the name is base64url.
func subject(channel string) string {
	return streamPrefix + nsToken(protocol.Namespace(channel)) + "." + base64.RawURLEncoding.EncodeToString([]byte(channel))
}

func (l *JSLog) stream(channel string) (Stream, error) {
	s, ok := l.streams[protocol.Namespace(channel)]
	if !ok {
		return Stream{}, fmt.Errorf("cluster: no history stream for %q", channel)
	}
	return s, nil
}

// tipOf returns the channel's cache entry, creating it.
func (l *JSLog) tipOf(channel string) *tip {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.tips[channel]
	if t == nil {
		if len(l.tips) >= maxTips {
			for k, o := range l.tips {
				if o.mu.TryLock() {
					delete(l.tips, k)
					o.mu.Unlock()
					break
				}
			}
		}
		t = &tip{}
		l.tips[channel] = t
	}
	return t
}

// Observe tells the log of a publication another node stored (the bus's
// news), so that this node's tip continues the channel's epoch even after
// the stream forgot it. Never blocks on I/O.
func (l *JSLog) Observe(channel, epoch string, offset uint64) {
	if _, ok := l.streams[protocol.Namespace(channel)]; !ok || epoch == "" {
		return
	}
	t := l.tipOf(channel)
	if !t.mu.TryLock() {
		return // an Append is running: it reads the stream itself
	}
	if t.epoch == "" || (t.epoch == epoch && offset > t.offset) {
		t.epoch, t.offset = epoch, offset
		t.loaded = false // the stream sequence is not known: read it at the next Append
	}
	t.mu.Unlock()
}

// Append implements hub.Backend.
func (l *JSLog) Append(ctx context.Context, channel string, pub protocol.Publication) (protocol.Publication, string, error) {
	if _, err := l.stream(channel); err != nil {
		return protocol.Publication{}, "", err
	}
	subj := subject(channel)
	t := l.tipOf(channel)
	t.mu.Lock()
	defer t.mu.Unlock()
	id := l.nodeID + "-" + strconv.FormatUint(l.ids.Add(1), 10)
	for attempt := 0; ; attempt++ {
		if !t.loaded {
			if err := l.reload(ctx, subj, t); err != nil {
				return protocol.Publication{}, "", err
			}
		}
		epoch := t.epoch
		if epoch == "" {
			epoch = newEpoch()
		}
		p := pub
		p.Offset = t.offset + 1
		body, err := json.Marshal(record{Epoch: epoch, ID: id, Pub: p})
		if err != nil {
			return protocol.Publication{}, "", fmt.Errorf("cluster: encode publication of %s: %w", channel, err)
		}
		pctx, cancel := context.WithTimeout(ctx, l.timeout)
		ack, err := l.js.Publish(pctx, subj, body, jetstream.WithExpectLastSequencePerSubject(t.seq), jetstream.WithMsgID(id))
		cancel()
		if err == nil {
			t.seq, t.epoch, t.offset = ack.Sequence, epoch, p.Offset
			return p, epoch, nil
		}
		// A lost ack or a conflict: what is stored now decides.
		t.loaded = false
		if rerr := l.reload(ctx, subj, t); rerr != nil {
			return protocol.Publication{}, "", down(fmt.Errorf("cluster: append to %s: %w", channel, err))
		}
		if t.lastID == id {
			return p, epoch, nil // ours was stored; only the ack was lost
		}
		var apiErr *jetstream.APIError
		conflict := errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
		// Each conflict means another node's append won, so the loop as a
		// whole makes progress; a node slowed down (e.g. by -race under load)
		// lost 20 in a row to two busy writers, so the bound is generous and
		// the caller's context ends it sooner.
		if !conflict || attempt >= 1000 || ctx.Err() != nil {
			return protocol.Publication{}, "", down(fmt.Errorf("cluster: append to %s: %w", channel, err))
		}
	}
}

// reload reads the subject's newest message into t. An empty subject keeps
// t's epoch and offset (the history aged out; the position stays).
func (l *JSLog) reload(ctx context.Context, subj string, t *tip) error {
	m, err := l.lastOf(ctx, subj)
	if err != nil {
		return down(fmt.Errorf("cluster: read last of %s: %w", subj, err))
	}
	t.loaded, t.lastID = true, ""
	if status := m.Header.Get("Status"); status == "404" {
		t.seq = 0
		return nil
	} else if status != "" {
		return down(fmt.Errorf("cluster: read last of %s: status %s %s", subj, status, m.Header.Get("Description")))
	}
	rec, seq, err := decodeRecord(m)
	if err != nil {
		return err
	}
	t.seq, t.epoch, t.offset, t.lastID = seq, rec.Epoch, rec.Pub.Offset, rec.ID
	return nil
}

// Top implements hub.TopReader for the hub's position check: the newest
// stored position of channel, in one direct get of the subject's last
// message (Since reads every retained one). A channel with nothing stored
// answers the zero Position.
func (l *JSLog) Top(ctx context.Context, channel string) (hub.Position, error) {
	if _, err := l.stream(channel); err != nil {
		return hub.Position{}, err
	}
	subj := subject(channel)
	m, err := l.lastOf(ctx, subj)
	if err != nil {
		return hub.Position{}, down(fmt.Errorf("cluster: read last of %s: %w", subj, err))
	}
	if status := m.Header.Get("Status"); status == "404" {
		return hub.Position{}, nil
	} else if status != "" {
		return hub.Position{}, down(fmt.Errorf("cluster: read last of %s: status %s %s", subj, status, m.Header.Get("Description")))
	}
	rec, _, err := decodeRecord(m)
	if err != nil {
		return hub.Position{}, err
	}
	return hub.Position{Epoch: rec.Epoch, Offset: rec.Pub.Offset}, nil
}

var _ hub.TopReader = (*JSLog)(nil)

// lastOf asks JetStream for the newest message of subj (a direct get),
// within the log's request timeout.
func (l *JSLog) lastOf(ctx context.Context, subj string) (*nats.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	return l.nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET."+streamOfSubject(subj)+"."+subj, nil)
}

// streamOfSubject returns the stream that holds subj.
func streamOfSubject(subj string) string {
	rest := subj[len(streamPrefix):]
	return "SORI_H_" + rest[:bytes.IndexByte([]byte(rest), '.')]
}

func decodeRecord(m *nats.Msg) (record, uint64, error) {
	var rec record
	if err := json.Unmarshal(m.Data, &rec); err != nil {
		return record{}, 0, fmt.Errorf("cluster: stored publication on %s: %w", m.Header.Get("Nats-Subject"), err)
	}
	seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
	if err != nil {
		return record{}, 0, fmt.Errorf("cluster: stored publication without sequence: %w", err)
	}
	return rec, seq, nil
}

// read returns every retained message of channel, oldest first (at most
// the namespace's size), in one batched direct get.
func (l *JSLog) read(ctx context.Context, channel string) ([]record, error) {
	s, err := l.stream(channel)
	if err != nil {
		return nil, err
	}
	subj := subject(channel)
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	req, _ := json.Marshal(map[string]any{"seq": 1, "next_by_subj": subj, "batch": s.Size})
	inbox := l.nc.NewRespInbox()
	sub, err := l.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, down(fmt.Errorf("cluster: read %s: %w", channel, err))
	}
	defer sub.Unsubscribe()
	if err := l.nc.PublishRequest("$JS.API.DIRECT.GET."+streamName(s.Namespace), inbox, req); err != nil {
		return nil, down(fmt.Errorf("cluster: read %s: %w", channel, err))
	}
	var out []record
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, down(fmt.Errorf("cluster: read %s: %w", channel, err))
		}
		switch status := m.Header.Get("Status"); status {
		case "":
		case "404", "204": // nothing stored; end of batch
			return out, nil
		default:
			return nil, down(fmt.Errorf("cluster: read %s: status %s %s", channel, status, m.Header.Get("Description")))
		}
		rec, _, err := decodeRecord(m)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
		if len(out) >= s.Size {
			return out, nil // the EOB that follows is dropped with the inbox
		}
	}
}

// top is the channel's position: its newest retained message, or the tip
// this node remembers when the history aged out.
func (l *JSLog) top(channel string, recs []record) hub.Position {
	if len(recs) > 0 {
		last := recs[len(recs)-1]
		return hub.Position{Epoch: last.Epoch, Offset: last.Pub.Offset}
	}
	t := l.tipOf(channel)
	t.mu.Lock()
	defer t.mu.Unlock()
	return hub.Position{Epoch: t.epoch, Offset: t.offset}
}

// current drops records of an older epoch (a reset while they were kept).
func current(recs []record) []record {
	if len(recs) == 0 {
		return recs
	}
	ep := recs[len(recs)-1].Epoch
	i := len(recs)
	for i > 0 && recs[i-1].Epoch == ep {
		i--
	}
	return recs[i:]
}

// Since implements hub.Backend. A client that has seen nothing (epoch "",
// offset 0) is caught up from offset 1 when the log still holds it.
func (l *JSLog) Since(ctx context.Context, channel, epoch string, offset uint64, limit int) ([]protocol.Publication, hub.Position, bool, error) {
	recs, err := l.read(ctx, channel)
	if err != nil {
		return nil, hub.Position{}, false, err
	}
	recs = current(recs)
	top := l.top(channel, recs)
	if epoch == "" && offset == 0 && len(recs) > 0 && recs[0].Pub.Offset == 1 {
		epoch = top.Epoch
	}
	if epoch != top.Epoch || offset > top.Offset {
		return nil, top, false, nil
	}
	if offset == top.Offset {
		return nil, top, true, nil
	}
	if len(recs) == 0 || recs[0].Pub.Offset > offset+1 {
		return nil, top, false, nil // the next one the client needs is gone
	}
	var out []protocol.Publication
	for _, r := range recs {
		if r.Pub.Offset > offset && len(out) < limit {
			out = append(out, r.Pub)
		}
	}
	return out, top, true, nil
}

// Last implements hub.Backend. Last(0), the position a first subscriber
// starts from, reads only the subject's newest message.
func (l *JSLog) Last(ctx context.Context, channel string, limit int) ([]protocol.Publication, hub.Position, error) {
	if limit <= 0 {
		if _, err := l.stream(channel); err != nil {
			return nil, hub.Position{}, err
		}
		var t tip
		if err := l.reload(ctx, subject(channel), &t); err != nil {
			return nil, hub.Position{}, err
		}
		if t.seq != 0 {
			return nil, hub.Position{Epoch: t.epoch, Offset: t.offset}, nil
		}
		return nil, l.top(channel, nil), nil
	}
	recs, err := l.read(ctx, channel)
	if err != nil {
		return nil, hub.Position{}, err
	}
	recs = current(recs)
	top := l.top(channel, recs)
	if limit <= 0 {
		return nil, top, nil
	}
	if len(recs) > limit {
		recs = recs[len(recs)-limit:]
	}
	out := make([]protocol.Publication, len(recs))
	for i, r := range recs {
		out[i] = r.Pub
	}
	return out, top, nil
}

var _ hub.Backend = (*JSLog)(nil)

func newEpoch() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
