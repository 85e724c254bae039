package chat

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/sori-dev/sori/internal/store"
	"github.com/sori-dev/sori/internal/store/sqlite"
)

// BenchmarkPost measures the chat write path: Service.Post through the hub
// (validation, membership check, store commit, fan-out) with many concurrent
// senders, each call returning only after its message is committed. It
// compares group commit (the default) with one transaction per message
// (MaxBatch 1) in the same run, with senders spread over many rooms and
// all in one room. Run with (figures and method in docs/benchmarks.md, bar 4):
//
//	go test -run '^$' -bench BenchmarkPost -benchtime 20000x -count 5 ./internal/chat
func BenchmarkPost(b *testing.B) {
	for _, mode := range []struct {
		name string
		opts sqlite.Options
	}{
		{"group-commit", sqlite.Options{}},
		{"one-tx-per-message", sqlite.Options{MaxBatch: 1}},
	} {
		for _, rooms := range []int{64, 1} {
			b.Run(fmt.Sprintf("%s/senders=256/rooms=%d", mode.name, rooms), func(b *testing.B) {
				benchPost(b, mode.opts, 256, rooms)
			})
		}
	}
}

func benchPost(b *testing.B, opts sqlite.Options, senders, rooms int) {
	ctx := context.Background()
	e := newEnv(b, opts)
	users := make([]store.User, senders)
	for i := range users {
		users[i] = e.user(b, fmt.Sprint("u", i))
	}
	roomIDs := make([]int64, rooms)
	for i := range roomIDs {
		r, err := e.svc.CreateRoom(ctx, users[0], NewRoom{Name: fmt.Sprint("r", i), Kind: store.RoomPublic})
		if err != nil {
			b.Fatal(err)
		}
		roomIDs[i] = r.ID
	}
	// Sender i posts in room i % rooms.
	for i, u := range users {
		if _, err := e.svc.Join(ctx, u, roomIDs[i%rooms]); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	b.ResetTimer()
	// RunParallel starts GOMAXPROCS*p goroutines; pick p for ~senders.
	b.SetParallelism(max(1, senders/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)-1) % senders
		u, room := users[i], roomIDs[i%rooms]
		for pb.Next() {
			if _, err := e.svc.Post(ctx, u, room, "a durable message of typical length, about sixty bytes", 0); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
