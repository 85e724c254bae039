package sfu

import (
	"net"
	"syscall"
	"time"
	"unsafe"
)

// rxStamps makes the kernel stamp each datagram received on c with its
// arrival time (SO_TIMESTAMPNS); readStamped reads it. On loopback that is
// the moment the sender's write went through, whatever this process's
// goroutines were doing then.
func rxStamps(c *net.UDPConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	}); err != nil || serr != nil {
		return false
	}
	return true
}

// readStamped reads one datagram and the kernel's arrival time of it (now,
// when the kernel gave none).
func readStamped(c *net.UDPConn, b, oob []byte) (int, net.Addr, time.Time, error) {
	n, oobn, _, addr, err := c.ReadMsgUDP(b, oob)
	if err != nil {
		return 0, nil, time.Time{}, err
	}
	if msgs, perr := syscall.ParseSocketControlMessage(oob[:oobn]); perr == nil {
		for _, m := range msgs {
			if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SCM_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(syscall.Timespec{})) {
				ts := (*syscall.Timespec)(unsafe.Pointer(&m.Data[0]))
				return n, addr, time.Unix(ts.Unix()), nil
			}
		}
	}
	return n, addr, time.Now(), nil
}
