package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/session"
)

// TestShutdownTellsEveryTransportToReconnect (issue 9.11): on shutdown every
// client learns to reconnect (1001) whatever its transport, including
// long-poll clients that are between two polls when the server starts
// shutting down: the listener stays open until they fetched the disconnect.
func TestShutdownTellsEveryTransportToReconnect(t *testing.T) {
	ts := startServer(t, nil)
	// A token after each session's close (no session is open yet); the
	// hooks run once the session left the node.
	closed := make(chan struct{}, 1)
	ts.Node().OnClosed(func(*session.Session) {
		select {
		case closed <- struct{}{}:
		default: // a token is already waiting: the loop re-checks the count
		}
	})
	hc := &http.Client{Timeout: 20 * time.Second}
	t.Cleanup(hc.CloseIdleConnections)
	open := func(kind, user string) string {
		t.Helper()
		body := fmt.Sprintf(`{"id":1,"op":"connect","token":%q}`, ts.token(t, user, time.Hour))
		resp, err := hc.Post(ts.URL+"/http/open?transport="+kind, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r struct{ Session string }
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != 200 {
			t.Fatalf("open %s: %d %v", kind, resp.StatusCode, err)
		}
		return r.Session
	}
	// poll returns the messages of one poll and its X-Sori-Seq.
	poll := func(sid, ack string) ([]map[string]any, string, error) {
		resp, err := hc.Get(ts.URL + "/poll?session=" + sid + "&ack=" + ack + "&wait=0")
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var msgs []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil {
				msgs = append(msgs, m)
			}
		}
		return msgs, resp.Header.Get("X-Sori-Seq"), nil
	}

	ws := connectAs(t, ts, "w")

	sseSID := open("sse", "s")
	req, _ := http.NewRequest("GET", ts.URL+"/sse?session="+sseSID, nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sseDisconnect := make(chan map[string]any, 1)
	go func() {
		defer close(sseDisconnect)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var m map[string]any
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok && json.Unmarshal([]byte(data), &m) == nil && m["push"] == "disconnect" {
				sseDisconnect <- m
				return
			}
		}
	}()

	// Five long-poll clients, each having fetched its connect reply, now
	// between two polls.
	type poller struct{ sid, ack string }
	var pollers []poller
	for i := range 5 {
		sid := open("longpoll", fmt.Sprintf("p%d", i))
		msgs, ack, err := poll(sid, "0")
		if err != nil || len(msgs) == 0 || msgs[0]["result"] == nil {
			t.Fatalf("first poll: %v %v", msgs, err)
		}
		pollers = append(pollers, poller{sid, ack})
	}

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shut <- ts.Shutdown(ctx)
	}()
	// Every session has been closed (the WebSocket one with its close
	// frame written) before the pollers come back.
	for ts.Node().Count() > 0 {
		select {
		case <-closed:
		case err := <-shut:
			t.Fatalf("shutdown returned (%v) with %d sessions left", err, ts.Node().Count())
		}
	}
	for i, p := range pollers {
		msgs, _, err := poll(p.sid, p.ack)
		if err != nil {
			t.Fatalf("long-poll client %d: %v", i, err)
		}
		if len(msgs) == 0 || msgs[len(msgs)-1]["push"] != "disconnect" || num(msgs[len(msgs)-1]["code"]) != 1001 || msgs[len(msgs)-1]["reconnect"] != true {
			t.Fatalf("long-poll client %d got %v, want a disconnect 1001 with reconnect", i, msgs)
		}
	}
	select {
	case m := <-sseDisconnect:
		if num(m["code"]) != 1001 || m["reconnect"] != true {
			t.Fatalf("SSE client got %v, want a disconnect 1001 with reconnect", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SSE client got no disconnect")
	}
	if ce := ws.waitClose(); ce.Code != 1001 {
		t.Fatalf("WebSocket client closed with %v, want 1001", ce)
	}
	if err := <-shut; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}
