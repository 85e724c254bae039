//go:build linux

package ws

import (
	"io"
	"net"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkUncoalescedWriteFloor is the floor of a fan-out where nothing
// coalesces (1 channel × 1,000 at a low rate, docs/benchmarks.md "Latency at
// 50%"): one write(2) of a 160-byte frame to each of 1,000 loopback TCP
// connections in turn, from one OS thread, with no Sori code around it. It
// reports the writing thread's own CPU per write (CLOCK_THREAD_CPUTIME_ID:
// the kernel's TCP send, and on loopback the receiver's side of TCP, which
// runs inside the write) and that × 1,000 as fanout-ms: the CPU time after
// which the last of 1,000 subscribers can have its copy when one core does
// the writes, before any queueing. The readers drain the other ends on
// their own goroutines (other threads).
//
//	go test ./internal/transport/ws -run '^$' -bench UncoalescedWriteFloor -benchtime 20000x
func BenchmarkUncoalescedWriteFloor(b *testing.B) {
	const conns = 1000
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	fds := make([]int, 0, conns)
	for range conns {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		go func() { _, _ = io.Copy(io.Discard, c) }()
		s, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		rc, err := s.(*net.TCPConn).SyscallConn()
		if err != nil {
			b.Fatal(err)
		}
		_ = rc.Control(func(fd uintptr) { fds = append(fds, int(fd)) })
	}
	frame := make([]byte, 160)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var t0, t1 unix.Timespec
	b.ResetTimer()
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &t0)
	for i := range b.N {
		for {
			_, err := unix.Write(fds[i%conns], frame)
			if err == nil {
				break
			}
			if err != unix.EAGAIN && err != unix.EINTR {
				b.Fatal(err)
			}
			// The reader is behind: wait until the socket takes more (the
			// wait is off this thread's CPU, so not part of the measure).
			pfd := []unix.PollFd{{Fd: int32(fds[i%conns]), Events: unix.POLLOUT}}
			if _, err := unix.Poll(pfd, -1); err != nil && err != unix.EINTR {
				b.Fatal(err)
			}
		}
	}
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &t1)
	b.StopTimer()
	cpu := float64(t1.Nano()-t0.Nano()) / float64(b.N)
	b.ReportMetric(cpu, "cpu-ns/write")
	b.ReportMetric(cpu*conns/1e6, "fanout-ms")
}
