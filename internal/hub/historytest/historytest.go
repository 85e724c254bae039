// Package historytest is the conformance suite of the history contract that
// the hub's in-memory ring and every durable hub.Backend obey (see
// hub.Backend), run by each implementation's tests like storetest. It must
// never import anything of Sori but hub and protocol.
//
// The contract, for one channel:
//   - Positions: publications get offsets 1, 2, 3, … without gaps within an
//     epoch; the top is the epoch and the latest offset (offset 0 before the
//     first publication).
//   - Last(limit) returns the newest limit publications, oldest first, and
//     the top.
//   - Since(epoch, offset, limit) returns the first limit publications after
//     offset, oldest first, and ok. "Caught up" (offset = the top's) is ok with
//     nothing. Another epoch, or an offset beyond the top, is not ok: the
//     client must reload.
//   - Limits are positive here: the hub clamps 0 and oversize limits before
//     calling (hub.History), and a Backend's Last(0) returns only the top.
package historytest

import (
	"context"
	"fmt"
	"testing"

	"github.com/sori-dev/sori/internal/hub"
	"github.com/sori-dev/sori/internal/protocol"
)

// Log is one channel's history under test, fresh and empty.
type Log interface {
	// Append stores the channel's next publication and returns its position.
	Append(ctx context.Context) (hub.Position, error)
	Since(ctx context.Context, epoch string, offset uint64, limit int) ([]protocol.Publication, hub.Position, bool, error)
	Last(ctx context.Context, limit int) ([]protocol.Publication, hub.Position, error)
}

// Run checks the contract on logs made by newLog, one per subtest. A log
// must keep at least 20 publications.
func Run(t *testing.T, newLog func(t *testing.T) Log) {
	ctx := context.Background()
	t.Run("empty", func(t *testing.T) {
		l := newLog(t)
		pubs, top, err := l.Last(ctx, 5)
		if err != nil || len(pubs) != 0 || top.Offset != 0 {
			t.Fatalf("Last of an empty log: %d publications, top %+v, %v", len(pubs), top, err)
		}
		pubs, _, ok, err := l.Since(ctx, top.Epoch, 0, 5)
		if err != nil || !ok || len(pubs) != 0 {
			t.Fatalf("Since(top) of an empty log: %d publications, ok %v, %v; want caught up", len(pubs), ok, err)
		}
	})
	t.Run("positions", func(t *testing.T) {
		l := newLog(t)
		first := appendN(t, l, 10)
		_, top, err := l.Last(ctx, 1)
		if err != nil || top != (hub.Position{Epoch: first.Epoch, Offset: 10}) {
			t.Fatalf("top %+v (%v), want %s/10", top, err, first.Epoch)
		}
	})
	t.Run("last", func(t *testing.T) {
		l := newLog(t)
		appendN(t, l, 10)
		for _, tt := range []struct {
			limit int
			want  []uint64
		}{{1, seq(10, 10)}, {3, seq(8, 10)}, {10, seq(1, 10)}, {100, seq(1, 10)}} {
			pubs, _, err := l.Last(ctx, tt.limit)
			if err != nil || !same(offsets(pubs), tt.want) {
				t.Errorf("Last(%d) = %v (%v), want %v", tt.limit, offsets(pubs), err, tt.want)
			}
		}
	})
	t.Run("since", func(t *testing.T) {
		l := newLog(t)
		pos := appendN(t, l, 10)
		for _, tt := range []struct {
			epoch  string
			offset uint64
			limit  int
			ok     bool
			want   []uint64
		}{
			{pos.Epoch, 4, 3, true, seq(5, 7)},
			{pos.Epoch, 4, 100, true, seq(5, 10)},
			{pos.Epoch, 0, 100, true, seq(1, 10)},
			{pos.Epoch, 9, 1, true, seq(10, 10)},
			{pos.Epoch, 10, 5, true, nil},  // caught up
			{pos.Epoch, 11, 5, false, nil}, // beyond the top
			{"another-epoch", 4, 5, false, nil},
		} {
			pubs, top, ok, err := l.Since(ctx, tt.epoch, tt.offset, tt.limit)
			if err != nil || ok != tt.ok || tt.ok && !same(offsets(pubs), tt.want) || !tt.ok && len(pubs) != 0 {
				t.Errorf("Since(%s, %d, %d) = %v ok %v (%v), want %v ok %v", tt.epoch, tt.offset, tt.limit, offsets(pubs), ok, err, tt.want, tt.ok)
			}
			if top != (hub.Position{Epoch: pos.Epoch, Offset: 10}) {
				t.Errorf("Since(%s, %d, %d): top %+v, want %s/10", tt.epoch, tt.offset, tt.limit, top, pos.Epoch)
			}
		}
	})
}

// appendN appends n publications and checks their positions: consecutive
// offsets from 1 in one epoch. It returns the last position.
func appendN(t *testing.T, l Log, n int) hub.Position {
	t.Helper()
	var pos hub.Position
	for i := 1; i <= n; i++ {
		p, err := l.Append(context.Background())
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if p.Offset != uint64(i) || i > 1 && p.Epoch != pos.Epoch || p.Epoch == "" {
			t.Fatalf("append %d: position %+v after %+v, want offset %d in one non-empty epoch", i, p, pos, i)
		}
		pos = p
	}
	return pos
}

func offsets(pubs []protocol.Publication) []uint64 {
	out := make([]uint64, 0, len(pubs))
	for _, p := range pubs {
		out = append(out, p.Offset)
	}
	return out
}

func seq(from, to uint64) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func same(a, b []uint64) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// HubLog is a Log read and written through a hub (hub.Publish and
// hub.History), so that it covers the ring of an in-memory namespace or the
// Backend of a durable one, and the hub's limit handling. user publishes
// data(i) as the i-th publication.
func HubLog(h *hub.Hub, channel, user string, data func(i int) []byte) Log {
	return &hubLog{h: h, ch: channel, user: user, data: data}
}

type hubLog struct {
	h    *hub.Hub
	ch   string
	user string
	data func(int) []byte
	n    int
}

func (l *hubLog) Append(ctx context.Context) (hub.Position, error) {
	l.n++
	return l.h.Publish(ctx, l.ch, l.data(l.n), l.user)
}

func (l *hubLog) Since(ctx context.Context, epoch string, offset uint64, limit int) ([]protocol.Publication, hub.Position, bool, error) {
	return l.h.History(ctx, l.ch, limit, &hub.Position{Epoch: epoch, Offset: offset})
}

func (l *hubLog) Last(ctx context.Context, limit int) ([]protocol.Publication, hub.Position, error) {
	pubs, top, _, err := l.h.History(ctx, l.ch, limit, nil)
	return pubs, top, err
}

// BackendLog is a Log on a Backend directly: pub(i) is the i-th publication
// to append (its offset is the Backend's to set).
func BackendLog(b hub.Backend, channel string, pub func(i int) protocol.Publication) Log {
	return &backendLog{b: b, ch: channel, pub: pub}
}

type backendLog struct {
	b   hub.Backend
	ch  string
	pub func(int) protocol.Publication
	n   int
}

func (l *backendLog) Append(ctx context.Context) (hub.Position, error) {
	l.n++
	p, epoch, err := l.b.Append(ctx, l.ch, l.pub(l.n))
	return hub.Position{Epoch: epoch, Offset: p.Offset}, err
}

func (l *backendLog) Since(ctx context.Context, epoch string, offset uint64, limit int) ([]protocol.Publication, hub.Position, bool, error) {
	return l.b.Since(ctx, l.ch, epoch, offset, limit)
}

func (l *backendLog) Last(ctx context.Context, limit int) ([]protocol.Publication, hub.Position, error) {
	return l.b.Last(ctx, l.ch, limit)
}
