package postgres

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sori-dev/sori/internal/store"
	"github.com/sori-dev/sori/internal/store/postgres/pgtest"
	"github.com/sori-dev/sori/internal/store/storetest"
)

// newSchema returns a DSN on a schema private to t (or skips t).
func newSchema(t testing.TB) string { return pgtest.Schema(t) }

func openDSN(t testing.TB, dsn string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dsnOf remembers each test store's DSN for Reopen.
var dsnOf sync.Map // *Store → string

func openTemp(t *testing.T) store.Store {
	dsn := newSchema(t)
	s := openDSN(t, dsn, Options{})
	dsnOf.Store(s, dsn)
	t.Cleanup(func() { checkIntegrity(t, dsn) })
	return s
}

func reopen(t *testing.T, s store.Store) store.Store {
	t.Helper()
	dsn, _ := dsnOf.Load(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openDSN(t, dsn.(string), Options{})
	dsnOf.Store(s2, dsn)
	return s2
}

// checkIntegrity checks what the schema cannot: every room's last_seq is
// the number of its events (so seqs are 1..last_seq without a gap), and
// every message's index entry matches its body.
func checkIntegrity(t *testing.T, dsn string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close(ctx)
	var bad int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM rooms r WHERE r.last_seq <> (SELECT count(*) FROM events e WHERE e.room_id = r.id)
		OR r.last_seq <> (SELECT coalesce(max(seq), 0) FROM events e WHERE e.room_id = r.id)`).Scan(&bad)
	if err != nil || bad != 0 {
		t.Errorf("rooms whose last_seq disagrees with their log: %d (%v)", bad, err)
	}
	// The log's tables have no foreign keys to rooms and users (migration
	// 0005): the writer's checks are what keeps these references whole.
	err = conn.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM rooms r WHERE r.id = e.room_id)
			OR NOT EXISTS (SELECT 1 FROM users u WHERE u.id = e.user_id))
		+ (SELECT count(*) FROM messages m WHERE NOT EXISTS (SELECT 1 FROM rooms r WHERE r.id = m.room_id)
			OR NOT EXISTS (SELECT 1 FROM users u WHERE u.id = m.author_id))`).Scan(&bad)
	if err != nil || bad != 0 {
		t.Errorf("log rows naming a room or user that does not exist: %d (%v)", bad, err)
	}
	rows, err := conn.Query(ctx, `SELECT body, tsv::text FROM messages`)
	if err != nil {
		t.Error(err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var body, tsv string
		if err := rows.Scan(&body, &tsv); err != nil {
			t.Error(err)
			return
		}
		if want := len(lexemes(body)); strings.Count(tsv, "'")/2 != want {
			t.Errorf("message %q is indexed as %s", body, tsv)
		}
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{Open: openTemp, Reopen: reopen})
}

// cluster is three Stores on one schema, as three nodes would have: appends
// rotate over them, so every conformance test of the log runs with several
// group-commit writers contending for the same rooms.
type cluster struct {
	*Store // reads and the other writes go to the first node
	nodes  []*Store
	next   atomic.Int64
}

func (c *cluster) AppendEvent(ctx context.Context, roomID int64, ev store.Event) (store.Event, error) {
	n := c.nodes[int(c.next.Add(1))%len(c.nodes)]
	return n.AppendEvent(ctx, roomID, ev)
}

// CreateSessionCapped rotates too: the cap must hold across nodes.
func (c *cluster) CreateSessionCapped(ctx context.Context, token string, ss store.Session, max int) (store.Session, error) {
	n := c.nodes[int(c.next.Add(1))%len(c.nodes)]
	return n.CreateSessionCapped(ctx, token, ss, max)
}

func (c *cluster) Close() error {
	for _, n := range c.nodes {
		n.Close()
	}
	return nil
}

func openCluster(t *testing.T, dsn string) *cluster {
	c := &cluster{}
	for range 3 {
		c.nodes = append(c.nodes, openDSN(t, dsn, Options{}))
	}
	c.Store = c.nodes[0]
	return c
}

// The suite again with three nodes appending to one database.
func TestConformanceThreeNodes(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store {
			dsn := newSchema(t)
			c := openCluster(t, dsn)
			dsnOf.Store(c, dsn)
			t.Cleanup(func() { checkIntegrity(t, dsn) })
			return c
		},
		Reopen: func(t *testing.T, s store.Store) store.Store {
			dsn, _ := dsnOf.Load(s)
			s.Close()
			c := openCluster(t, dsn.(string))
			dsnOf.Store(c, dsn)
			return c
		},
	})
}
