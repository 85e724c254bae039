package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// subscribe subscribes the call client's connection to channel and waits
// for the reply (through the same id matching as rpc).
func (cc *callClient) subscribe(channel string) {
	cc.t.Helper()
	reply := make(chan map[string]any, 1)
	cc.mu.Lock()
	cc.nextID++
	id := cc.nextID
	cc.waiting[id] = reply
	cc.mu.Unlock()
	b, _ := json.Marshal(map[string]any{"id": id, "op": "subscribe", "channel": channel})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cc.cl.c.Write(ctx, websocket.MessageText, b); err != nil {
		cc.t.Fatal(err)
	}
	select {
	case m := <-reply:
		if m["error"] != nil {
			cc.t.Fatalf("subscribe %s: %v", channel, m["error"])
		}
	case <-ctx.Done():
		cc.t.Fatalf("subscribe %s: no reply", channel)
	}
}

// nextPubData returns the data of the next publication on channel.
func (cc *callClient) nextPubData(channel string) map[string]any {
	cc.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-cc.pushes:
			if !ok {
				cc.t.Fatal("connection closed")
			}
			if m["push"] == "pub" && m["channel"] == channel {
				return m["data"].(map[string]any)
			}
		case <-deadline:
			cc.t.Fatalf("no publication on %s within 10s", channel)
		}
	}
}

// TestCallStateReachesMembersOutsideTheCall: members of a room who are not
// in its call see it start, change and end on the room's live channel, and
// can ask for it with call.status; a call in a direct room rings the other
// user on user:<name>, a call in a group room rings no one (docs/calls.md,
// "Call state outside the call").
func TestCallStateReachesMembersOutsideTheCall(t *testing.T) {
	ts := startServer(t, nil)
	room, users := chatRoomOf(t, ts, "ann", "ben", "cy")
	ann, ben, cy := newCallClient(t, connectChat(t, ts, users[0])), newCallClient(t, connectChat(t, ts, users[1])), newCallClient(t, connectChat(t, ts, users[2]))
	live := "chat:" + room + "#live"
	cy.subscribe(live)
	cy.subscribe("user:cy")
	want := func(active bool, mode string, who ...string) {
		t.Helper()
		got := cy.nextPubData(live)
		ps := []string{}
		for _, p := range got["participants"].([]any) {
			ps = append(ps, p.(string))
		}
		if got["type"] != "call" || got["active"] != active || got["mode"] != mode || !reflect.DeepEqual(ps, append([]string{}, who...)) {
			t.Fatalf("cy saw %v, want active=%v mode=%s participants=%v", got, active, mode, who)
		}
	}
	st := cy.must("call.status", map[string]any{"room": room})
	if st["active"] != false || st["type"] != "call" {
		t.Fatalf("status before the call: %v", st)
	}
	ann.must("call.join", map[string]any{"room": room})
	want(true, "mesh", "ann")
	ben.must("call.join", map[string]any{"room": room})
	want(true, "mesh", "ann", "ben")
	st = cy.must("call.status", map[string]any{"room": room})
	if fmt.Sprint(st["participants"]) != "[ann ben]" || st["active"] != true {
		t.Fatalf("status during the call: %v", st)
	}
	ann.must("call.leave", map[string]any{"room": room})
	want(true, "mesh", "ben")
	ben.must("call.leave", map[string]any{"room": room})
	want(false, "mesh")

	// A direct room rings the other user, once, with who called.
	dm := users[0].call(t, ts, "POST", "/api/v1/direct/cy", nil, http.StatusCreated)
	dmID := int64(dm["id"].(float64))
	if got := cy.nextPubData("user:cy"); got["type"] != "dm_opened" {
		t.Fatalf("cy got %v, want dm_opened", got)
	}
	ann.must("call.join", map[string]any{"room": fmt.Sprint(dmID)})
	got := cy.nextPubData("user:cy")
	if got["type"] != "call_ring" || int64(num(got["room"])) != dmID || got["by"] != "ann" {
		t.Fatalf("cy got %v, want a call_ring for room %d by ann", got, dmID)
	}
	// Not a member: no status (104), and no live channel either.
	cy.refused("call.status", map[string]any{"room": "999999"}, 104)
	ben.refused("call.status", map[string]any{"room": fmt.Sprint(dmID)}, 104)
	ben.refused("call.status", map[string]any{"room": "no spaces"}, 101)
}
