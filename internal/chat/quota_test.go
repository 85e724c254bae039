package chat

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sori-dev/sori/internal/hub"
	"github.com/sori-dev/sori/internal/store"
	"github.com/sori-dev/sori/internal/store/sqlite"
)

// TestUploadStorageChecks: the quota counts what the user stored (an
// upload that would cross it is refused whole), and the free-space reserve
// plus one maximum upload must be free.
func TestUploadStorageChecks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "sori.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	h, err := hub.New(hub.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	free := int64(1 << 20)
	svc, err := New(Config{Store: st, Hub: h, DataDir: dir, MaxFileSize: 1000, UploadQuota: 2500, DiskReserve: 4000,
		FreeSpace: func(string) (int64, error) { return free, nil }})
	if err != nil {
		t.Fatal(err)
	}
	alice := must(st.CreateUser(ctx, store.User{Username: "alice"}))(t)
	r := must(svc.CreateRoom(ctx, alice, NewRoom{Name: "p", Kind: store.RoomPublic}))(t)
	up := func(n int) error {
		_, err := svc.Upload(ctx, alice, r.ID, "f", strings.NewReader(strings.Repeat("x", n)))
		return err
	}
	for range 2 {
		if err := up(1000); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, "upload crossing the quota", up(600), 120)
	if err := up(500); err != nil {
		t.Fatalf("upload to the quota: %v", err)
	}
	wantCode(t, "upload at the quota", up(1), 120)
	if n := must(st.UserFileBytes(ctx, alice.ID))(t); n != 2500 {
		t.Fatalf("stored %d bytes, want 2500 (a refused upload keeps nothing)", n)
	}

	bob := must(st.CreateUser(ctx, store.User{Username: "bob"}))(t)
	must(svc.Join(ctx, bob, r.ID))(t)
	free = 4999 // below reserve + one maximum upload
	_, err = svc.Upload(ctx, bob, r.ID, "f", strings.NewReader("x"))
	wantCode(t, "upload below the reserve", err, 121)
	free = 5000
	if _, err := svc.Upload(ctx, bob, r.ID, "f", strings.NewReader("x")); err != nil {
		t.Fatalf("upload at the reserve: %v", err)
	}
}
