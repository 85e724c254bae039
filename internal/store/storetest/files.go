package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/store"
)

func testFiles(t *testing.T, h Harness) {
	s, ctx := open(t, h), ctxT(t)
	alice := mkUser(t, s, "alice")
	room := mkRoom(t, s, "general", store.RoomPublic, alice.ID)
	other := mkRoom(t, s, "other", store.RoomPublic, alice.ID)

	base := time.Now().UTC().Add(-time.Minute)
	f1 := ok(s.CreateFile(ctx, store.File{RoomID: room.ID, UploaderID: alice.ID, Name: "cat.png", ContentType: "image/png",
		Size: 1234, SHA256: "ab12", Path: "files/ab/ab12", CreatedAt: base})).must(t)
	if f1.ID == "" || len(f1.ID) < 16 {
		t.Fatalf("file ID = %q, want a random id", f1.ID)
	}
	f2 := ok(s.CreateFile(ctx, store.File{RoomID: room.ID, UploaderID: alice.ID, Name: "notes.txt", ContentType: "text/plain",
		Size: 5, SHA256: "cd34", Path: "files/cd/cd34", CreatedAt: base.Add(time.Second)})).must(t)
	ok(s.CreateFile(ctx, store.File{RoomID: other.ID, UploaderID: alice.ID, Name: "x", ContentType: "text/plain", Path: "x"})).must(t)
	if n := ok(s.UserFileBytes(ctx, alice.ID)).must(t); n != 1234+5 {
		t.Fatalf("UserFileBytes = %d, want %d", n, 1234+5)
	}
	if n := ok(s.UserFileBytes(ctx, 999999)).must(t); n != 0 {
		t.Fatalf("UserFileBytes(nobody) = %d, want 0", n)
	}
	if f1.ID == f2.ID {
		t.Fatal("two files share an id")
	}
	if got := ok(s.GetFile(ctx, f1.ID)).must(t); got != f1 {
		t.Fatalf("GetFile = %+v, want %+v", got, f1)
	}
	list := ok(s.ListFiles(ctx, room.ID, "", 0)).must(t)
	if len(list) != 2 || list[0] != f2 || list[1] != f1 {
		t.Fatalf("ListFiles = %+v, want newest first", list)
	}
	// Pages: limit, then before the last file of the previous page.
	if list := ok(s.ListFiles(ctx, room.ID, "", 1)).must(t); len(list) != 1 || list[0] != f2 {
		t.Fatalf("ListFiles(limit 1) = %+v, want the newest", list)
	}
	if list := ok(s.ListFiles(ctx, room.ID, f2.ID, 1)).must(t); len(list) != 1 || list[0] != f1 {
		t.Fatalf("ListFiles(before newest) = %+v, want the older", list)
	}
	if list := ok(s.ListFiles(ctx, room.ID, f1.ID, 0)).must(t); len(list) != 0 {
		t.Fatalf("ListFiles(before oldest) = %+v, want none", list)
	}
	// Files uploaded in the same microsecond still page without a gap or a
	// repeat (by id).
	same := base.Add(time.Hour)
	var burst []store.File
	for i := range 5 {
		burst = append(burst, ok(s.CreateFile(ctx, store.File{RoomID: other.ID, UploaderID: alice.ID, Name: fmt.Sprintf("b%d", i),
			ContentType: "text/plain", Path: fmt.Sprintf("b%d", i), CreatedAt: same})).must(t))
	}
	seen, cursor := map[string]bool{}, ""
	for {
		page := ok(s.ListFiles(ctx, other.ID, cursor, 2)).must(t)
		if len(page) == 0 {
			break
		}
		for _, f := range page {
			if seen[f.ID] {
				t.Fatalf("file %s listed twice", f.Name)
			}
			seen[f.ID] = true
		}
		cursor = page[len(page)-1].ID
	}
	if len(seen) != len(burst)+1 {
		t.Fatalf("paging listed %d files of the room, want %d", len(seen), len(burst)+1)
	}
	// The cursor must be a file of that room.
	_, err0 := s.ListFiles(ctx, room.ID, "nope", 0)
	wantErr(t, err0, store.ErrNotFound)
	_, err0 = s.ListFiles(ctx, other.ID, f1.ID, 0)
	wantErr(t, err0, store.ErrNotFound)
	_, err := s.GetFile(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.CreateFile(ctx, store.File{RoomID: 999999, UploaderID: alice.ID, Name: "x", Path: "x"})
	wantErr(t, err, store.ErrNotFound)
	_, err = s.CreateFile(ctx, store.File{ID: f1.ID, RoomID: room.ID, UploaderID: alice.ID, Name: "x", Path: "x"})
	wantErr(t, err, store.ErrConflict)
}
