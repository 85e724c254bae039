package postgres

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/store"
	"github.com/sori-dev/sori/internal/store/sqlite"
)

// BenchmarkDurableAppend measures acknowledged (committed) messages per
// second from 64 concurrent senders: the SQLite store (one node, group
// commit) as the baseline, then this store with three Stores on one
// database, as three nodes would run, over 64 rooms and over one hot room
// that all three contend for, and one-transaction-per-message as the
// no-batching baseline. One op is one message; compare msgs/s within a run.
//
// pg_virtualenv makes clusters with fsync off; -o fsync=on measures commits
// that survive a machine crash:
//
//	pg_virtualenv -t -o fsync=on sh -c 'SORI_TEST_POSTGRES="host=$PGHOST port=$PGPORT user=$PGUSER password=$PGPASSWORD dbname=$PGDATABASE" \
//	  go test -run "^$" -bench DurableAppend -benchtime 20000x ./internal/store/postgres'
func BenchmarkDurableAppend(b *testing.B) {
	b.Run("sqlite-1-node-64-rooms", func(b *testing.B) {
		s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), sqlite.DefaultFileName), sqlite.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		benchAppend(b, []store.Store{s}, 64, 64)
	})
	for _, c := range []struct {
		name         string
		nodes, rooms int
		opts         Options
	}{
		{"postgres-3-nodes-64-rooms", 3, 64, Options{}},
		{"postgres-3-nodes-1-room", 3, 1, Options{}},
		{"postgres-1-node-64-rooms", 1, 64, Options{}},
		{"postgres-3-nodes-64-rooms-one-tx-per-message", 3, 64, Options{MaxBatch: 1}},
	} {
		b.Run(c.name, func(b *testing.B) {
			dsn := newSchema(b)
			var nodes []store.Store
			for range c.nodes {
				s := openDSN(b, dsn, c.opts)
				defer s.Close()
				nodes = append(nodes, s)
			}
			benchAppend(b, nodes, 64, c.rooms)
			var batches, events int64
			for _, n := range nodes {
				batches += n.(*Store).batches.Load()
				events += n.(*Store).batchedEvents.Load()
			}
			if batches > 0 {
				b.ReportMetric(float64(events)/float64(batches), "events/batch")
			}
		})
	}
}

// benchAppend runs senders goroutines spread evenly over nodes, each
// appending to its own room of rooms, until b.N messages are committed.
func benchAppend(b *testing.B, nodes []store.Store, senders, rooms int) {
	ctx := context.Background()
	s := nodes[0]
	u, err := s.CreateUser(ctx, store.User{Username: "bench", PasswordHash: "h"})
	if err != nil {
		b.Fatal(err)
	}
	roomIDs := make([]int64, rooms)
	for i := range roomIDs {
		r, err := s.CreateRoom(ctx, store.Room{Name: fmt.Sprint("room-", i), Kind: store.RoomPublic, CreatedBy: u.ID})
		if err != nil {
			b.Fatal(err)
		}
		roomIDs[i] = r.ID
	}
	body := "a chat message of a typical length, about sixty-odd bytes long"
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for g := range senders {
		wg.Go(func() {
			node, room := nodes[g%len(nodes)], roomIDs[g%rooms]
			for next.Add(1) <= int64(b.N) {
				if _, err := node.AppendEvent(ctx, room, store.Event{Kind: store.EventMessage, UserID: u.ID, Body: body}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}
