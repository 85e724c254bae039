package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/store"
)

// BenchmarkDurableAppend measures acknowledged (committed) messages per
// second from 64 concurrent senders over 64 rooms: group commit against one
// transaction per message (MaxBatch 1), in the same run. One op is one
// message; see msgs/s and events/batch.
//
//	go test -run '^$' -bench DurableAppend -benchtime 20000x ./internal/store/sqlite
func BenchmarkDurableAppend(b *testing.B) {
	for _, c := range []struct {
		name string
		opts Options
	}{
		{"group-commit", Options{}},
		{"one-tx-per-message", Options{MaxBatch: 1}},
		{"group-commit-sync-full", Options{SyncFull: true}},
		{"one-tx-per-message-sync-full", Options{MaxBatch: 1, SyncFull: true}},
	} {
		b.Run(c.name, func(b *testing.B) { benchAppend(b, c.opts, 64, 64) })
	}
}

func benchAppend(b *testing.B, opts Options, senders, rooms int) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), DefaultFileName), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
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
	s.batches.Store(0)
	s.batchedEvents.Store(0)
	b.ResetTimer()
	start := time.Now()
	for g := range senders {
		wg.Go(func() {
			room := roomIDs[g%rooms]
			for next.Add(1) <= int64(b.N) {
				if _, err := s.AppendEvent(ctx, room, store.Event{Kind: store.EventMessage, UserID: u.ID, Body: body}); err != nil {
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
	if n := s.batches.Load(); n > 0 {
		b.ReportMetric(float64(s.batchedEvents.Load())/float64(n), "events/batch")
	}
}
