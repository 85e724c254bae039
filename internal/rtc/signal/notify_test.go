package signal

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// recNotifier records notifications as strings on a channel, in order.
type recNotifier struct{ ch chan string }

func (n *recNotifier) CallChanged(room Room, st CallState) {
	n.ch <- fmt.Sprintf("%s %s active=%v %s [%s]", room, st.Type, st.Active, st.Mode, strings.Join(st.Participants, " "))
}

func (n *recNotifier) CallStarted(room Room, by string) {
	n.ch <- fmt.Sprintf("%s ring by %s", room, by)
}

// next waits for the next notification (the drain goroutine delivers them).
func (n *recNotifier) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-n.ch:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no notification")
		return ""
	}
}

// none checks that nothing is queued: the Service notes synchronously
// under its lock, so anything a finished call caused is already pending.
func (n *recNotifier) none(t *testing.T, s *Service) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.notes.mu.Lock()
		pending, running := len(s.notes.pending), s.notes.running
		s.notes.mu.Unlock()
		if pending != 0 {
			t.Fatalf("%d notifications pending", pending)
		}
		if !running { // the drain goroutine delivered everything it took
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the notifier never finished")
		}
		time.Sleep(time.Millisecond) // poll for the end of a delivery in flight
	}
	select {
	case got := <-n.ch:
		t.Fatalf("unexpected notification %q", got)
	default:
	}
}

func TestCallStateNotifications(t *testing.T) {
	n := &recNotifier{ch: make(chan string, 16)}
	ft := &fakeTimers{}
	s, err := New(Config{
		Membership: members{"42": {"ann", "bob", "cat"}},
		MeshLimit:  2, SFULimit: 5, Media: &recMedia{}, AfterFunc: ft.AfterFunc, Notifier: n,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ann, ann2 := &memConn{id: "a", user: "ann"}, &memConn{id: "a2", user: "ann"}
	bob, cat := &memConn{id: "b", user: "bob"}, &memConn{id: "c", user: "cat"}
	join := func(c *memConn, replaces string) JoinResult {
		t.Helper()
		res, err := s.Join(ctx, c, JoinRequest{Room: "42", Replaces: replaces})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	want := func(w string) {
		t.Helper()
		if got := n.next(t); got != w {
			t.Fatalf("notification %q, want %q", got, w)
		}
	}

	// The first join starts the call: its state, then the ring.
	first := join(ann, "")
	want("42 call active=true mesh [ann]")
	want("42 ring by ann")
	join(bob, "")
	want("42 call active=true mesh [ann bob]")
	// Ann's second device changes no one's view: nothing is published.
	join(ann2, "")
	want("42 call active=true sfu [ann bob]") // the third join moved the call
	if err := s.Leave(ann2, LeaveRequest{Room: "42"}); err != nil {
		t.Fatal(err)
	}
	n.none(t, s)
	join(cat, "")
	want("42 call active=true sfu [ann bob cat]")
	// Cat and bob leave; back to mesh when the hysteresis timer fires.
	if err := s.Leave(cat, LeaveRequest{Room: "42"}); err != nil {
		t.Fatal(err)
	}
	want("42 call active=true sfu [ann bob]")
	if err := s.Leave(bob, LeaveRequest{Room: "42"}); err != nil {
		t.Fatal(err)
	}
	want("42 call active=true sfu [ann]")
	ft.last().f()
	want("42 call active=true mesh [ann]")
	join(bob, "")
	want("42 call active=true mesh [ann bob]")
	// A rejoin that replaces ann's lost participant is no new call.
	join(ann2, first.Participant)
	want("42 call active=true mesh [bob ann]") // ann is now the later joiner
	n.none(t, s)
	// Status for a member outside the call.
	st, err := s.Status(ctx, cat, StatusRequest{Room: "42"})
	if err != nil {
		t.Fatal(err)
	}
	if w := (CallState{Type: "call", Active: true, Participants: []string{"bob", "ann"}, Mode: ModeMesh}); !reflect.DeepEqual(st, w) {
		t.Fatalf("status %+v, want %+v", st, w)
	}
	if _, err := s.Status(ctx, &memConn{id: "z", user: "zed"}, StatusRequest{Room: "42"}); err == nil {
		t.Fatal("a non-member got the call status")
	} else {
		wantCode(t, err, errNotMember.Code)
	}
	if _, err := s.Status(ctx, &memConn{id: "y"}, StatusRequest{Room: "42"}); err == nil {
		t.Fatal("an anonymous connection got the call status")
	}
	// Everybody gone: the call ended.
	s.Disconnected(bob)
	want("42 call active=true mesh [ann]")
	s.Disconnected(ann2)
	want("42 call active=false mesh []")
	n.none(t, s)
	st, err = s.Status(ctx, cat, StatusRequest{Room: "42"})
	if err != nil || st.Active || len(st.Participants) != 0 {
		t.Fatalf("status after the end %+v, %v", st, err)
	}
}

// A slow Notifier gets the latest state of a room, not every step.
func TestCallStateCoalesces(t *testing.T) {
	block := make(chan struct{})
	n := &recNotifier{ch: make(chan string, 16)}
	s, err := New(Config{Membership: members{"42": {"ann", "bob", "cat"}, "7": {"ann"}}, MeshLimit: 4, Notifier: blockingNotifier{n, block}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, u := range []string{"ann", "bob", "cat"} {
		if _, err := s.Join(ctx, &memConn{id: u, user: u}, JoinRequest{Room: "42"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Join(ctx, &memConn{id: "a7", user: "ann"}, JoinRequest{Room: "7"}); err != nil {
		t.Fatal(err)
	}
	close(block)
	// The first state may have been taken before the others came; the
	// rest coalesced into room 42's latest state, in place.
	got := []string{n.next(t)}
	for got[len(got)-1] != "7 ring by ann" {
		got = append(got, n.next(t))
	}
	last := ""
	for _, g := range got {
		if strings.HasPrefix(g, "42 call") {
			last = g
		}
	}
	if last != "42 call active=true mesh [ann bob cat]" {
		t.Fatalf("notifications %q: room 42's latest state is not the last", got)
	}
	if len(got) > 5 {
		t.Fatalf("notifications %q: did not coalesce", got)
	}
}

type blockingNotifier struct {
	n     *recNotifier
	block chan struct{}
}

func (b blockingNotifier) CallChanged(room Room, st CallState) { <-b.block; b.n.CallChanged(room, st) }
func (b blockingNotifier) CallStarted(room Room, by string)    { <-b.block; b.n.CallStarted(room, by) }
