package netpoll

import (
	"errors"
	"syscall"
)

// ErrUnsupported is returned by Watch where no poller exists (systems other
// than Linux) or the connection exposes no socket (a TLS connection, a
// wrapper): the caller then waits on a goroutine of its own.
var ErrUnsupported = errors.New("netpoll: readiness of this connection cannot be watched")

// RawConn returns the socket of nc when it exposes one, nil otherwise.
func RawConn(nc any) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil // e.g. a TLS connection: bytes may wait inside it
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}
