package chat

import (
	"context"
	"fmt"
	"testing"

	"github.com/sori-dev/sori/internal/store"
	"github.com/sori-dev/sori/internal/store/sqlite"
)

func TestParseMentions(t *testing.T) {
	cases := []struct {
		text  string
		names string
		room  bool
	}{
		{"hi @bob", "[bob]", false},
		{"@Bob, @bob and @ALICE.", "[bob alice]", false},
		{"mail bob@example.com or @@bob", "[]", false},
		{"@room and @here-we-go_", "[here-we-go]", true},
		{"@b is too short, @-x starts badly, (@carol) works", "[carol]", false},
		{"no mentions", "[]", false},
	}
	for _, c := range cases {
		names, room := parseMentions(c.text)
		if fmt.Sprint(names) != c.names && !(len(names) == 0 && c.names == "[]") || room != c.room {
			t.Errorf("parseMentions(%q) = %v %v, want %s %v", c.text, names, room, c.names, c.room)
		}
	}
	many := ""
	for i := range MaxMentions + 5 {
		many += fmt.Sprintf("@user%d ", i)
	}
	if names, _ := parseMentions(many); len(names) != MaxMentions {
		t.Errorf("%d names resolved, want at most %d", len(names), MaxMentions)
	}
}

func TestValidateClientID(t *testing.T) {
	for _, ok := range []string{"", "a", "A-b_9", fmt.Sprintf("%064d", 0)} {
		if perr := ValidateClientID(ok); perr != nil {
			t.Errorf("%q refused: %v", ok, perr)
		}
	}
	for _, bad := range []string{" ", "a b", "é", "a/b", fmt.Sprintf("%065d", 0)} {
		if ValidateClientID(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestMentionsOnlyMembers: a name that is not a member is plain text, and
// @room needs an admin.
func TestMentionsOnlyMembers(t *testing.T) {
	e := newEnv(t, sqlite.Options{})
	ctx := context.Background()
	alice, bob, eve := e.user(t, "alice"), e.user(t, "bob"), e.user(t, "eve")
	_ = eve
	r := must(e.svc.CreateRoom(ctx, alice, NewRoom{Name: "x", Kind: store.RoomPublic}))(t)
	must(e.svc.Join(ctx, bob, r.ID))(t)
	ids, names, room, err := e.svc.mentionsOf(ctx, r.ID, store.RoleMember, "@bob @eve @nobody @room")
	if err != nil || fmt.Sprint(ids) != fmt.Sprint([]int64{bob.ID}) || fmt.Sprint(names) != "[bob]" || room {
		t.Fatalf("member: %v %v %v %v", ids, names, room, err)
	}
	if _, _, room, _ := e.svc.mentionsOf(ctx, r.ID, store.RoleAdmin, "@room"); !room {
		t.Fatal("an admin's @room was not honoured")
	}
}
