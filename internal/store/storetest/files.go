package storetest

import (
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
	if f1.ID == f2.ID {
		t.Fatal("two files share an id")
	}
	if got := ok(s.GetFile(ctx, f1.ID)).must(t); got != f1 {
		t.Fatalf("GetFile = %+v, want %+v", got, f1)
	}
	list := ok(s.ListFiles(ctx, room.ID)).must(t)
	if len(list) != 2 || list[0] != f2 || list[1] != f1 {
		t.Fatalf("ListFiles = %+v, want newest first", list)
	}
	_, err := s.GetFile(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.CreateFile(ctx, store.File{RoomID: 999999, UploaderID: alice.ID, Name: "x", Path: "x"})
	wantErr(t, err, store.ErrNotFound)
	_, err = s.CreateFile(ctx, store.File{ID: f1.ID, RoomID: room.ID, UploaderID: alice.ID, Name: "x", Path: "x"})
	wantErr(t, err, store.ErrConflict)
}
