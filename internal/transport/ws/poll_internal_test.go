//go:build linux

package ws

import (
	"bytes"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/transport/netpoll"
)

// TestPollSurvivesSignals: a signal interrupting the poller's epoll_wait
// (SIGSTOP/SIGCONT of the server, a profiler, the runtime's own SIGURG) is
// no error: parked connections go on working. It once crashed the process
// (EpollWait's -1 taken as an event count).
func TestPollSurvivesSignals(t *testing.T) {
	if !netpoll.Supported {
		t.Skip("no poller on this system")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	peer := &recordingPeer{done: make(chan struct{})}
	opts := &Options{IdleTimeout: time.Minute, CloseTimeout: time.Second}
	opts.setDefaults(time.Minute)
	c := &conn{nc: server, peer: peer, opts: opts, pl: newPoller(opts), sock: netpoll.RawConn(server)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _, _ = bytes.NewBuffer(nil).ReadFrom(client) }()

	msgs := [][]byte{[]byte(`{"id":1}`), []byte(`{"id":2}`), []byte(`{"id":3}`)}
	if _, err := client.Write(clientFrame(0x81, msgs[0])); err != nil {
		t.Fatal(err)
	}
	c.readLoop()
	for i := 1; i <= len(msgs); i++ {
		waitParked(t, c, peer)
		signalAllThreads(t, syscall.SIGURG) // the poller's thread among them
		next := clientFrame(0x88, []byte{0x03, 0xE8})
		if i < len(msgs) {
			next = clientFrame(0x81, msgs[i])
		}
		if _, err := client.Write(next); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-peer.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection did not end")
	}
	_ = client.Close()
	wg.Wait()
	for c.writing.Load() {
		time.Sleep(time.Millisecond)
	}
	peer.mu.Lock()
	defer peer.mu.Unlock()
	if len(peer.messages) != len(msgs) || peer.reason.Code != 1000 {
		t.Fatalf("messages %q, closed with %+v", peer.messages, peer.reason)
	}
}

// waitParked waits until the connection's reader has parked in the poller.
func waitParked(t *testing.T, c *conn, peer *recordingPeer) {
	t.Helper()
	for c.rstate.Load() != readerParked {
		select {
		case <-peer.done:
			t.Fatalf("the connection ended before parking: %+v", peer.reason)
		case <-time.After(time.Millisecond):
		}
	}
}

func signalAllThreads(t *testing.T, sig syscall.Signal) {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		if tid, err := strconv.Atoi(task.Name()); err == nil {
			_ = syscall.Tgkill(os.Getpid(), tid, sig)
		}
	}
}
