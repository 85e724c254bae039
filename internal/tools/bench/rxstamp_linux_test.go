//go:build linux

package bench

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestRxStamperGivesTheKernelsReceiveTime: the time an rxStamper reports
// for a read is when the bytes reached the socket (on loopback, inside the
// peer's write call), not when they were read: it lies between the times
// taken around the write, although the read comes after both.
func TestRxStamperGivesTheKernelsReceiveTime(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	sc, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	defer sc.Close()
	rx := newRxStamper(cc)
	if rx == nil {
		t.Fatal("SO_TIMESTAMPNS could not be set on a loopback TCP socket")
	}
	br := bufio.NewReaderSize(rx, 64)
	// The kernel turns receive stamping on for the host shortly after the
	// first socket asks (a deferred static-key switch): until then reads
	// come without a stamp and report 0. Wait for the first stamp.
	for i := 0; rx.lastRx() == 0; i++ {
		if i == 100000 {
			t.Fatal("no receive stamp after 100,000 round trips")
		}
		if _, err := sc.Write([]byte{'.'}); err != nil {
			t.Fatal(err)
		}
		if _, err := br.ReadByte(); err != nil {
			t.Fatal(err)
		}
	}
	for i, msg := range []string{"first", "second, longer than the first"} {
		before := time.Now().UnixNano()
		if _, err := sc.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		after := time.Now().UnixNano()
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil {
			t.Fatal(err)
		}
		read := time.Now().UnixNano()
		if string(got) != msg {
			t.Fatalf("read %q, want %q", got, msg)
		}
		if at := rx.lastRx(); at < before || at > after {
			t.Fatalf("message %d: receive time %d not within the write [%d, %d] (read done at %d)", i, at, before, after, read)
		}
	}
	// The end of the stream is io.EOF, as from the connection itself.
	sc.Close()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after the peer closed: %v, want EOF", err)
	}
}

// TestRxTimeSkipsOtherControlMessages: the parser finds the timestamp
// after a control message of another type and refuses truncated input.
func TestRxTimeSkipsOtherControlMessages(t *testing.T) {
	want := int64(1_700_000_000_123_456_789)
	ts := unix.NsecToTimespec(want)
	stamp := make([]byte, unix.CmsgSpace(int(unsafe.Sizeof(ts))))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&stamp[0]))
	h.Level, h.Type = unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS
	h.SetLen(unix.CmsgLen(int(unsafe.Sizeof(ts))))
	*(*unix.Timespec)(unsafe.Pointer(&stamp[unix.CmsgLen(0)])) = ts
	oob := append(unix.UnixRights(7), stamp...) // another message first
	if got, ok := rxTime(oob); !ok || got != want {
		t.Fatalf("rxTime = %d, %v; want %d", got, ok, want)
	}
	if _, ok := rxTime(unix.UnixRights(7)); ok {
		t.Fatal("a time from a message without one")
	}
	if _, ok := rxTime(oob[:len(oob)-4]); ok {
		t.Fatal("a time from a truncated message")
	}
	if _, ok := rxTime(nil); ok {
		t.Fatal("a time from no control message")
	}
}
