//go:build linux

package bench

import (
	"io"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rxStamper reads a TCP socket with recvmsg and keeps the kernel's receive
// time of the data each read returned (SO_TIMESTAMPNS), so that a delivery's
// latency ends when its bytes reached the client's socket, not when the
// client's goroutine got round to reading them. With the load generator's
// core saturated (1,000 readers on one core), the second includes the
// client's own queueing: the measurement would be the client's, not the
// server's.
//
// On loopback the kernel stamps a segment when the sender's write hands it
// to the loopback device (netif_rx, inside the server's write call). TCP
// reports the stamp of the last segment a read copied, so a read that
// returns several frames gives all of them the newest one's time: an
// over-estimate of the earlier frames' latency, never an under-estimate.
//
// One reader at a time (the connection's read goroutine); nothing is
// allocated per read: the recvmsg arguments live in the struct.
type rxStamper struct {
	rc   syscall.RawConn
	hdr  unix.Msghdr
	iov  unix.Iovec
	oob  [64]byte
	n    int
	err  error
	fn   func(fd uintptr) bool // s.recv, bound once
	last int64                 // unix nanos: the kernel's receive time of the last read's data; 0 if it came without one
}

// newRxStamper turns on SO_TIMESTAMPNS for nc and returns its reader, or nil
// (read nc as it is, with the application's clock) when nc is not a TCP
// connection or the option cannot be set.
func newRxStamper(nc net.Conn) *rxStamper {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}); err != nil || serr != nil {
		return nil
	}
	s := &rxStamper{rc: rc}
	s.fn = s.recv
	return s
}

// Read implements io.Reader with recvmsg, recording the receive time.
func (s *rxStamper) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.iov.Base = &p[0]
	s.iov.SetLen(len(p))
	s.hdr.Iov = &s.iov
	s.hdr.SetIovlen(1)
	s.hdr.Control = &s.oob[0]
	s.n, s.err = 0, nil
	if err := s.rc.Read(s.fn); err != nil {
		s.iov.Base = nil
		return 0, err // a deadline or a closed connection
	}
	s.iov.Base = nil
	if s.err != nil {
		return 0, s.err
	}
	if s.n == 0 {
		return 0, io.EOF
	}
	return s.n, nil
}

// recv is the RawConn.Read callback: one recvmsg; false (wait for
// readiness) when nothing is there yet.
func (s *rxStamper) recv(fd uintptr) bool {
	s.hdr.SetControllen(len(s.oob))
	s.hdr.Flags = 0
	r, _, e := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&s.hdr)), 0)
	switch e {
	case 0:
	case unix.EAGAIN:
		return false
	case unix.EINTR:
		return s.recv(fd)
	default:
		s.err = e
		return true
	}
	s.n = int(r)
	// No stamp (the kernel turns stamping on for the whole host a moment
	// after the first socket asks, so the first segments may have none):
	// 0, and the caller uses its own clock for this read.
	s.last, _ = rxTime(s.oob[:s.hdr.Controllen])
	return true
}

// rxTime finds the SCM_TIMESTAMPNS message among the control messages in
// oob and returns its time in unix nanos.
func rxTime(oob []byte) (int64, bool) {
	hl := unix.CmsgLen(0)
	for len(oob) >= hl {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hl || l > len(oob) {
			return 0, false
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && l >= hl+int(unsafe.Sizeof(unix.Timespec{})) {
			ts := (*unix.Timespec)(unsafe.Pointer(&oob[hl]))
			return ts.Nano(), true
		}
		next := unix.CmsgSpace(l - hl)
		if next >= len(oob) {
			break
		}
		oob = oob[next:]
	}
	return 0, false
}

// lastRx is the kernel's receive time of the last read's data (unix nanos),
// 0 when unknown.
func (s *rxStamper) lastRx() int64 { return s.last }
