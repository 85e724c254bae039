package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/store"
)

// The background checkpointer copies committed pages into the database file
// on its own, off the writer's path.
func TestBackgroundCheckpoint(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), DefaultFileName), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, err := s.CreateUser(ctx, store.User{Username: "u", PasswordHash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.CreateRoom(ctx, store.Room{Name: "r", Kind: store.RoomPublic, CreatedBy: u.ID})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, err := s.AppendEvent(ctx, r.ID, store.Event{Kind: store.EventMessage, UserID: u.ID, Body: "hello"}); err != nil {
			t.Fatal(err)
		}
	}
	// The checkpoint runs after the writer's kick; wait for it without
	// assuming how long it takes (go test's -timeout catches a checkpointer
	// that never runs). Nothing else checkpoints meanwhile: the writer's
	// threshold (8192 pages) is far away. The counter is this store's own:
	// a process-wide one let another test's store satisfy the wait.
	for s.checkpointedFrames.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkCheckpointer compares group commit with checkpoints in the
// background (the default) and inside the writer's COMMIT (SQLite's
// automatic checkpoint only), in the same run; 64 senders over 64 rooms as
// in BenchmarkDurableAppend.
//
//	go test -run '^$' -bench Checkpointer -benchtime 60000x -count 5 ./internal/store/sqlite
func BenchmarkCheckpointer(b *testing.B) {
	for _, bg := range []bool{true, false} {
		b.Run(fmt.Sprintf("background=%v", bg), func(b *testing.B) {
			defer func(old bool) { backgroundCheckpoints = old }(backgroundCheckpoints)
			backgroundCheckpoints = bg
			benchAppend(b, Options{}, 64, 64)
		})
	}
}
