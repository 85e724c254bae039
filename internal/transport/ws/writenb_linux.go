//go:build linux

package ws

import (
	"errors"

	"golang.org/x/sys/unix"
)

// writePoolSupported reports whether this system has non-blocking writes
// for the write pool (Options.WritePool).
const writePoolSupported = true

// tryWrite writes as much of b as the socket takes now, without waiting:
// n < len(b) with a nil error means the socket's send buffer is full.
func (c *conn) tryWrite(b []byte) (n int, err error) {
	cerr := c.sock.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, e := unix.Write(int(fd), b[n:])
			if m > 0 {
				n += m
			}
			switch {
			case e == nil:
				if m == 0 {
					return true // nothing taken: treat as full
				}
			case errors.Is(e, unix.EINTR):
			case errors.Is(e, unix.EAGAIN):
				return true
			default:
				err = e
				return true
			}
		}
		return true
	})
	if cerr != nil && err == nil {
		err = cerr
	}
	return n, err
}
