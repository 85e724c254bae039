package chat

import (
	"context"
	"fmt"
	"testing"

	"github.com/sori-dev/sori/internal/store"
	"github.com/sori-dev/sori/internal/store/sqlite"
)

func TestMemberRemovedObservers(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, sqlite.Options{})
	alice, bob, carol := e.user(t, "alice"), e.user(t, "bob"), e.user(t, "carol")
	room := must(e.svc.CreateRoom(ctx, alice, NewRoom{Name: "plans", Kind: store.RoomPrivate}))(t)
	must(e.svc.Invite(ctx, alice, room.ID, "bob"))(t)
	must(e.svc.Invite(ctx, alice, room.ID, "carol"))(t)

	var heard []string
	for i := range 2 {
		e.svc.OnMemberRemoved(func(roomID int64, user string, reason RemovalReason) {
			// The change is stored before observers hear of it.
			_, err := e.svc.member(ctx, map[string]store.User{"bob": bob, "carol": carol}[user], roomID)
			heard = append(heard, fmt.Sprintf("%d %d %s %s %d", i, roomID, user, reason, code(err)))
		})
	}
	wantCode(t, "member kicks", e.svc.Kick(ctx, bob, room.ID, "carol"), 104)
	if err := e.svc.Kick(ctx, alice, room.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Leave(ctx, carol, room.ID); err != nil {
		t.Fatal(err)
	}
	want := []string{
		fmt.Sprintf("0 %d bob kicked 104", room.ID), fmt.Sprintf("1 %d bob kicked 104", room.ID),
		fmt.Sprintf("0 %d carol left 104", room.ID), fmt.Sprintf("1 %d carol left 104", room.ID),
	}
	if fmt.Sprint(heard) != fmt.Sprint(want) {
		t.Fatalf("observers heard %q, want %q", heard, want)
	}
}
