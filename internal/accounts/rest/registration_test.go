package rest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/accounts"
)

func signupReq(name, invite string) req {
	body := map[string]string{"username": name, "password": "secret-pass"}
	if invite != "" {
		body["invite"] = invite
	}
	return req{method: "POST", path: "/api/v1/auth/signup", body: body}
}

// TestRegistrationModes: the configured mode holds until a server admin
// stores another; invite mode needs a valid code, spends one use per
// sign-up and never more than it has, also when sign-ups race; a refused
// sign-up spends nothing.
func TestRegistrationModes(t *testing.T) {
	f := newFixture(t, func(c *accounts.Config) {
		c.Registration = accounts.RegistrationInvite
		c.LoginBurst, c.LoginRate = 1000, 1000
	})
	ctx := context.Background()
	mode := func() string {
		t.Helper()
		resp, out := f.do(t, req{method: "GET", path: "/api/v1/auth/registration"})
		if resp.StatusCode != 200 {
			t.Fatalf("GET registration: %d %v", resp.StatusCode, out)
		}
		return out["mode"].(string)
	}
	if m := mode(); m != "invite" {
		t.Fatalf("mode = %q, want the configured invite", m)
	}
	admin, err := f.svc.CreateUser(ctx, "root", "secret-pass", true)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		r    req
		want int
	}{
		"no invite":      {signupReq("amy", ""), 104},
		"unknown invite": {signupReq("amy", "not-a-code"), 104},
	} {
		if resp, out := f.do(t, c.r); resp.StatusCode != 403 || errCode(out) != c.want {
			t.Fatalf("%s: %d %v", name, resp.StatusCode, out)
		}
	}
	code, inv, err := f.svc.CreateInvite(ctx, admin, time.Hour, 2)
	if err != nil || inv.Uses != 2 {
		t.Fatalf("CreateInvite: %+v %v", inv, err)
	}
	// Bad input is refused before the invite is touched.
	if resp, out := f.do(t, signupReq("a", code)); resp.StatusCode != 400 || errCode(out) != 101 {
		t.Fatalf("bad username with an invite: %d %v", resp.StatusCode, out)
	}
	if resp, out := f.do(t, signupReq("amy", code)); resp.StatusCode != 201 {
		t.Fatalf("sign-up with the invite: %d %v", resp.StatusCode, out)
	}
	if resp, out := f.do(t, signupReq("AMY", code)); resp.StatusCode != 409 || errCode(out) != 118 {
		t.Fatalf("taken name with the invite: %d %v", resp.StatusCode, out)
	}
	// One use is left: 10 racing sign-ups, one wins.
	var wg sync.WaitGroup
	status := make([]int, 10)
	for i := range status {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := f.do(t, signupReq(fmt.Sprintf("racer%d", i), code))
			status[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	won := 0
	for _, st := range status {
		switch st {
		case 201:
			won++
		case 403:
		default:
			t.Fatalf("racing sign-up answered %d", st)
		}
	}
	if won != 1 {
		t.Fatalf("%d racing sign-ups won the last use (statuses %v), want 1", won, status)
	}
	users, _ := f.st.ListUsers(ctx)
	if len(users) != 3 {
		t.Fatalf("%d users, want root, amy and one racer", len(users))
	}

	// An expired invite is refused; a revoked one too.
	old, _, err := f.svc.CreateInvite(ctx, admin, time.Minute, 1)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Add(2 * time.Minute)
	if resp, out := f.do(t, signupReq("late", old)); resp.StatusCode != 403 || errCode(out) != 104 {
		t.Fatalf("expired invite: %d %v", resp.StatusCode, out)
	}
	rev, revInv, _ := f.svc.CreateInvite(ctx, admin, time.Hour, 5)
	if err := f.svc.RevokeInvite(ctx, revInv.ID); err != nil {
		t.Fatal(err)
	}
	if resp, _ := f.do(t, signupReq("revoked", rev)); resp.StatusCode != 403 {
		t.Fatalf("revoked invite: %d", resp.StatusCode)
	}
	if err := f.svc.RevokeInvite(ctx, revInv.ID); err == nil {
		t.Fatal("revoking twice succeeded")
	}

	// An admin's choice wins over the configured mode, on every node
	// reading the store, until cleared.
	if err := f.svc.SetRegistrationMode(ctx, accounts.RegistrationOpen); err != nil {
		t.Fatal(err)
	}
	if m := mode(); m != "open" {
		t.Fatalf("mode after the admin opened it = %q", m)
	}
	if resp, out := f.do(t, signupReq("walkin", "")); resp.StatusCode != 201 {
		t.Fatalf("open sign-up: %d %v", resp.StatusCode, out)
	}
	if err := f.svc.SetRegistrationMode(ctx, accounts.RegistrationClosed); err != nil {
		t.Fatal(err)
	}
	fresh, _, _ := f.svc.CreateInvite(ctx, admin, time.Hour, 1)
	if resp, out := f.do(t, signupReq("shut", fresh)); resp.StatusCode != 403 || errCode(out) != 104 {
		t.Fatalf("closed sign-up with an invite: %d %v", resp.StatusCode, out)
	}
	if err := f.svc.SetRegistrationMode(ctx, "sideways"); err == nil {
		t.Fatal("an unknown mode was stored")
	}
	if err := f.svc.SetRegistrationMode(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if m := mode(); m != "invite" {
		t.Fatalf("mode after clearing = %q, want the configured invite", m)
	}
}

// TestInviteBounds: ttl and uses are bounded, and so is the number of
// usable invites; spent ones make room.
func TestInviteBounds(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin, err := f.svc.CreateUser(ctx, "root", "secret-pass", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ttl  time.Duration
		uses int
	}{{time.Second, 1}, {accounts.MaxInviteTTL + time.Hour, 1}, {time.Hour, -1}, {time.Hour, accounts.MaxInviteUses + 1}} {
		if _, _, err := f.svc.CreateInvite(ctx, admin, c.ttl, c.uses); err == nil {
			t.Fatalf("invite with ttl %v, uses %d was made", c.ttl, c.uses)
		}
	}
	for i := range accounts.MaxInvites {
		ttl := time.Hour
		if i == 0 {
			ttl = time.Minute
		}
		if _, _, err := f.svc.CreateInvite(ctx, admin, ttl, 1); err != nil {
			t.Fatalf("invite %d: %v", i+1, err)
		}
	}
	if _, _, err := f.svc.CreateInvite(ctx, admin, time.Hour, 1); err == nil {
		t.Fatalf("invite %d was made", accounts.MaxInvites+1)
	}
	f.clock.Add(2 * time.Minute) // the first expires, and is dropped at the next creation
	if _, _, err := f.svc.CreateInvite(ctx, admin, time.Hour, 1); err != nil {
		t.Fatalf("invite after one expired: %v", err)
	}
	if invs, _ := f.st.ListInvites(ctx); len(invs) != accounts.MaxInvites {
		t.Fatalf("%d invites stored, want %d", len(invs), accounts.MaxInvites)
	}
}
