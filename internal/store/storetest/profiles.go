package storetest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/store"
)

// testProfiles: display names and avatars are stored, versioned and
// removed, and GetUsers reads many users at once.
func testProfiles(t *testing.T, h Harness) {
	s, ctx := open(t, h), ctxT(t)
	alice, bob := mkUser(t, s, "alice"), mkUser(t, s, "bob")
	if alice.DisplayName != "" || !alice.AvatarAt.IsZero() || alice.Disabled {
		t.Fatalf("new user = %+v, want no profile", alice)
	}
	u := ok(s.SetDisplayName(ctx, alice.ID, "Alice Ångström")).must(t)
	if u.DisplayName != "Alice Ångström" || u.Username != "alice" {
		t.Fatalf("SetDisplayName = %+v", u)
	}
	_, err := s.SetDisplayName(ctx, 999999, "x")
	wantErr(t, err, store.ErrNotFound)

	_, err = s.GetAvatar(ctx, alice.ID)
	wantErr(t, err, store.ErrNotFound)
	png := []byte("\x89PNG\r\n\x1a\nfirst")
	u1 := ok(s.SetAvatar(ctx, alice.ID, store.Avatar{ContentType: "image/png", Data: png})).must(t)
	if u1.AvatarAt.IsZero() || u1.DisplayName != "Alice Ångström" {
		t.Fatalf("after SetAvatar = %+v", u1)
	}
	a := ok(s.GetAvatar(ctx, alice.ID)).must(t)
	if a.ContentType != "image/png" || !bytes.Equal(a.Data, png) || !a.UpdatedAt.Equal(u1.AvatarAt) {
		t.Fatalf("GetAvatar = %+v", a)
	}
	// A replacement right away still gets a later version.
	u2 := ok(s.SetAvatar(ctx, alice.ID, store.Avatar{ContentType: "image/gif", Data: []byte("GIF89a")})).must(t)
	if !u2.AvatarAt.After(u1.AvatarAt) {
		t.Fatalf("second avatar at %v, not after %v", u2.AvatarAt, u1.AvatarAt)
	}
	if a := ok(s.GetAvatar(ctx, alice.ID)).must(t); a.ContentType != "image/gif" || string(a.Data) != "GIF89a" {
		t.Fatalf("replaced avatar = %+v", a)
	}
	if got := ok(s.GetUser(ctx, alice.ID)).must(t); got != u2 {
		t.Fatalf("GetUser = %+v, want %+v", got, u2)
	}
	u3 := ok(s.SetAvatar(ctx, alice.ID, store.Avatar{})).must(t)
	if !u3.AvatarAt.IsZero() {
		t.Fatalf("after removal AvatarAt = %v", u3.AvatarAt)
	}
	_, err = s.GetAvatar(ctx, alice.ID)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.SetAvatar(ctx, 999999, store.Avatar{ContentType: "image/png", Data: png})
	wantErr(t, err, store.ErrNotFound)

	got := ok(s.GetUsers(ctx, []int64{bob.ID, 999999, alice.ID})).must(t)
	if len(got) != 2 || got[0].ID != alice.ID || got[0].DisplayName != "Alice Ångström" || got[1].ID != bob.ID {
		t.Fatalf("GetUsers = %+v", got)
	}
	if got := ok(s.GetUsers(ctx, nil)).must(t); len(got) != 0 {
		t.Fatalf("GetUsers(nil) = %+v", got)
	}
	// More ids than one SQL statement may bind.
	ids := make([]int64, 0, 1200)
	for i := range 1200 {
		ids = append(ids, int64(i+1))
	}
	if got := ok(s.GetUsers(ctx, ids)).must(t); len(got) != 2 {
		t.Fatalf("GetUsers(1200 ids) = %d users, want 2", len(got))
	}
}

// testDisabled: disabling revokes every credential in the same step;
// enabling gives none back.
func testDisabled(t *testing.T, h Harness) {
	s, ctx := open(t, h), ctxT(t)
	alice, bob := mkUser(t, s, "alice"), mkUser(t, s, "bob")
	ok(s.CreateSession(ctx, "a-web", store.Session{Kind: store.SessionWeb, UserID: alice.ID})).must(t)
	ok(s.CreateSession(ctx, "b-web", store.Session{Kind: store.SessionWeb, UserID: bob.ID})).must(t)
	u := ok(s.SetDisabled(ctx, alice.ID, true)).must(t)
	if !u.Disabled || u.CredentialsGen != 1 || u.CredentialsChangedAt.IsZero() {
		t.Fatalf("disabled user = %+v, want disabled at generation 1", u)
	}
	_, err := s.GetSession(ctx, "a-web")
	wantErr(t, err, store.ErrNotFound)
	ok(s.GetSession(ctx, "b-web")).must(t)
	if ch := ok(s.CredentialsChangedSince(ctx, time.Time{})).must(t); len(ch) != 1 || ch[0].ID != alice.ID {
		t.Fatalf("CredentialsChangedSince after disabling = %+v, want alice (other processes close her connections)", ch)
	}
	e := ok(s.SetDisabled(ctx, alice.ID, false)).must(t)
	if e.Disabled || e.CredentialsGen != 1 {
		t.Fatalf("enabled user = %+v", e)
	}
	_, err = s.SetDisabled(ctx, 999999, true)
	wantErr(t, err, store.ErrNotFound)
}

// testInvites: an invite spends one use per sign-up, never more than it
// has, also when sign-ups race; an expired or deleted one creates nobody,
// and a taken name spends nothing.
func testInvites(t *testing.T, h Harness) {
	s, ctx := open(t, h), ctxT(t)
	admin := mkUser(t, s, "admin")
	now := time.Now()
	inv := ok(s.CreateInvite(ctx, store.Invite{ID: store.TokenID("code-1"), CreatedBy: admin.ID, ExpiresAt: now.Add(time.Hour), Uses: 2}, 0)).must(t)
	if inv.CreatedAt.IsZero() || inv.Used != 0 {
		t.Fatalf("CreateInvite = %+v", inv)
	}
	_, err := s.CreateInvite(ctx, store.Invite{ID: store.TokenID("code-1"), CreatedBy: admin.ID, ExpiresAt: now.Add(time.Hour), Uses: 1}, 0)
	wantErr(t, err, store.ErrConflict)
	ok(s.CreateInvite(ctx, store.Invite{ID: store.TokenID("old"), CreatedBy: admin.ID, ExpiresAt: now.Add(-time.Second), Uses: 5}, 0)).must(t)

	u := ok(s.CreateUserWithInvite(ctx, store.User{Username: "carol", PasswordHash: "h"}, inv.ID, now)).must(t)
	if u.ID == 0 || ok(s.GetUserByName(ctx, "carol")).must(t).ID != u.ID {
		t.Fatalf("invited user = %+v", u)
	}
	// A taken name: 409, and the use is not spent.
	_, err = s.CreateUserWithInvite(ctx, store.User{Username: "CAROL", PasswordHash: "h"}, inv.ID, now)
	wantErr(t, err, store.ErrConflict)
	_, err = s.CreateUserWithInvite(ctx, store.User{Username: "x1", PasswordHash: "h"}, store.TokenID("old"), now)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.CreateUserWithInvite(ctx, store.User{Username: "x2", PasswordHash: "h"}, store.TokenID("nope"), now)
	wantErr(t, err, store.ErrNotFound)
	for _, name := range []string{"x1", "x2"} {
		_, err := s.GetUserByName(ctx, name)
		wantErr(t, err, store.ErrNotFound)
	}

	// The last use, raced by 12 sign-ups: exactly one wins.
	won := race(t, 12, nil, store.ErrNotFound, func(i int) error {
		_, err := s.CreateUserWithInvite(ctx, store.User{Username: fmt.Sprintf("racer%d", i), PasswordHash: "h"}, inv.ID, now)
		return err
	})
	if won != 1 {
		t.Fatalf("%d racing sign-ups won the last use, want 1", won)
	}
	list := ok(s.ListInvites(ctx)).must(t)
	if len(list) != 2 {
		t.Fatalf("ListInvites = %+v", list)
	}
	for _, i := range list {
		if i.ID == inv.ID && (i.Used != 2 || i.Uses != 2) {
			t.Fatalf("spent invite = %+v, want 2 of 2 used", i)
		}
	}
	noErr(t, s.DeleteInvite(ctx, inv.ID))
	wantErr(t, s.DeleteInvite(ctx, inv.ID), store.ErrNotFound)
}

// testSettingsAndRoomList: settings round-trip and clear; ListRooms pages
// over rooms of every kind with member counts.
func testSettingsAndRoomList(t *testing.T, h Harness) {
	s, ctx := open(t, h), ctxT(t)
	_, err := s.GetSetting(ctx, "registration")
	wantErr(t, err, store.ErrNotFound)
	noErr(t, s.SetSetting(ctx, "registration", "invite"))
	noErr(t, s.SetSetting(ctx, "registration", "closed"))
	if v := ok(s.GetSetting(ctx, "registration")).must(t); v != "closed" {
		t.Fatalf("setting = %q", v)
	}
	noErr(t, s.SetSetting(ctx, "registration", ""))
	_, err = s.GetSetting(ctx, "registration")
	wantErr(t, err, store.ErrNotFound)

	alice, bob := mkUser(t, s, "alice"), mkUser(t, s, "bob")
	pub := mkRoom(t, s, "pub", store.RoomPublic, alice.ID)
	ok(s.AddMember(ctx, pub.ID, bob.ID, store.RoleMember)).must(t)
	priv := mkRoom(t, s, "priv", store.RoomPrivate, bob.ID)
	dm, _, err := s.GetOrCreateDirectRoom(ctx, alice.ID, bob.ID)
	noErr(t, err)
	post(t, s, pub.ID, alice.ID, "hello")
	rooms := ok(s.ListRooms(ctx, 0, 2)).must(t)
	if len(rooms) != 2 || rooms[0].ID != pub.ID || rooms[0].Members != 2 || rooms[0].LastSeq != 1 || rooms[1].ID != priv.ID || rooms[1].Members != 1 {
		t.Fatalf("ListRooms page 1 = %+v", rooms)
	}
	rooms = ok(s.ListRooms(ctx, priv.ID, 10)).must(t)
	if len(rooms) != 1 || rooms[0].ID != dm.ID || rooms[0].Kind != store.RoomDirect || rooms[0].Members != 2 {
		t.Fatalf("ListRooms page 2 = %+v", rooms)
	}
}
