package ws_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/session"
	"github.com/sori-dev/sori/internal/transport/ws"
	"github.com/sori-dev/sori/internal/transport/ws/wstest"
)

// waitFor polls cond until it holds, failing the test after 10 s: the
// condition is an event (goroutines ended, sessions closed), not a duration.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// idleGoroutines connects n clients, has each one exchange a command, and
// returns how many goroutines the n idle connections hold once the count
// settles (below n/4, or after the readers' wait was handed off).
func idleGoroutines(t *testing.T, s *wsServer, n int) (int, []*client) {
	t.Helper()
	runtime.GC()
	before := runtime.NumGoroutine()
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = dial(t, s, nil)
		clients[i].Connect(s.token(t, fmt.Sprintf("u%d", i)))
	}
	var held int
	// Settled: a reader goes idle 1 ms (busyWait) after its last message.
	waitFor(t, "idle readers to settle", func() bool {
		held = runtime.NumGoroutine() - before
		return held < n/4 || held >= n
	})
	return held, clients
}

// TestPollIdleConnectionsHoldNoGoroutine: with the poller, idle connections
// hold no goroutine; without it, one each. Parked connections still answer,
// and each is woken by its own data only.
func TestPollIdleConnectionsHoldNoGoroutine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the poller is Linux-only")
	}
	const n = 64
	polled := startWS(t, session.Config{}, ws.Options{})
	held, clients := idleGoroutines(t, polled, n)
	if held >= n/4 {
		t.Fatalf("%d idle connections hold %d goroutines with the poller", n, held)
	}
	for i, c := range clients {
		c.Text(fmt.Sprintf(`{"id":%d,"op":"ping"}`, i+2))
		c.Reply(fmt.Sprintf(`"id":%d`, i+2))
	}
	// The peers leave: every session ends, none is left behind in the poller.
	for _, c := range clients {
		_ = c.NC.Close()
	}
	waitFor(t, "sessions to end", func() bool { return polled.node.Count() == 0 })

	plain := startWSOpts(t, session.Config{}, ws.Options{})
	if held, _ := idleGoroutines(t, plain, n); held < n {
		t.Fatalf("without the poller %d idle connections hold %d goroutines, want one each", n, held)
	}
}

// TestPollPongLeavesConnectionParked: a parked connection woken by a control
// frame alone — the pong that answers each heartbeat ping — parks again. It
// used to wait for the next data message on its goroutine, so every idle
// connection held a goroutine (and its stack) from its first pong on.
func TestPollPongLeavesConnectionParked(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the poller is Linux-only")
	}
	const n = 64
	s := startWS(t, session.Config{}, ws.Options{})
	held, clients := idleGoroutines(t, s, n)
	if held >= n/4 {
		t.Fatalf("%d idle connections hold %d goroutines before the pongs", n, held)
	}
	base := runtime.NumGoroutine() - held
	for _, c := range clients {
		c.Write(wstest.Frame(0x8a, nil)) // an unsolicited pong (RFC 6455 §5.5.3)
	}
	waitFor(t, "the woken readers to park again", func() bool {
		held = runtime.NumGoroutine() - base
		return held < n/4
	})
	// Parked, they still answer.
	for i, c := range clients {
		c.Text(fmt.Sprintf(`{"id":%d,"op":"ping"}`, i+2))
		c.Reply(fmt.Sprintf(`"id":%d`, i+2))
	}
}

// TestPollIdleTimeout: a parked connection whose peer stays silent past the
// idle timeout is closed with 4002, as a reader blocked on its goroutine
// would be by its read deadline.
func TestPollIdleTimeout(t *testing.T) {
	s := startWS(t, session.Config{}, ws.Options{IdleTimeout: 300 * time.Millisecond, CloseTimeout: 200 * time.Millisecond})
	c := dial(t, s, nil)
	c.Connect(s.token(t, "alice"))
	if code := c.CloseCode(); code != protocol.DisconnectNoPong.Code {
		t.Fatalf("close code %d, want %d", code, protocol.DisconnectNoPong.Code)
	}
	if err := c.EOF(); err != nil && err.Error() != "EOF" {
		t.Logf("after the close frame: %v", err)
	}
	waitFor(t, "the session to end", func() bool { return s.node.Count() == 0 })
}

// TestPollServerClosesParkedConnection: a parked connection closed by the
// server (shutdown) gets its close frame; if the peer never answers, the
// close timeout ends it although no reader waits on the socket.
func TestPollServerClosesParkedConnection(t *testing.T) {
	s := startWS(t, session.Config{}, ws.Options{CloseTimeout: 200 * time.Millisecond})
	answering, silent := dial(t, s, nil), dial(t, s, nil)
	answering.Connect(s.token(t, "alice"))
	silent.Connect(s.token(t, "bob"))
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- s.node.Shutdown(ctx, protocol.DisconnectShutdown)
	}()
	if code := answering.CloseCode(); code != protocol.DisconnectShutdown.Code {
		t.Fatalf("close code %d, want %d", code, protocol.DisconnectShutdown.Code)
	}
	answering.Write(frame(0x88, []byte{0x03, 0xE9}))
	if code := silent.CloseCode(); code != protocol.DisconnectShutdown.Code {
		t.Fatalf("close code %d, want %d", code, protocol.DisconnectShutdown.Code)
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if n := s.node.Count(); n != 0 {
		t.Fatalf("%d sessions left after shutdown", n)
	}
}
