//go:build linux

package ws

import (
	"sync"

	"golang.org/x/sys/unix"
)

// writePoolSupported reports whether this system has non-blocking writes
// for the write pool (Options.WritePool).
const writePoolSupported = true

// writeOp is one non-blocking write. RawConn.Write takes a func, and a
// closure over the write's state escapes into that interface call: it and
// the two variables it updates were three allocations per write (about one
// per delivery when nothing coalesces). The state lives in a pooled writeOp
// instead, whose method value is bound once.
type writeOp struct {
	b   []byte
	n   int
	err error
	fn  func(fd uintptr) bool // op.write
}

var writeOps = sync.Pool{New: func() any {
	op := new(writeOp)
	op.fn = op.write
	return op
}}

// write is the RawConn.Write callback: it writes op.b[op.n:] until the
// socket is full, fails, or takes it all. It always reports done: a full
// socket is the caller's to handle, never a wait.
func (op *writeOp) write(fd uintptr) bool {
	for op.n < len(op.b) {
		m, e := unix.Write(int(fd), op.b[op.n:])
		if m > 0 {
			op.n += m
		}
		switch e {
		case nil:
			if m == 0 {
				return true // nothing taken: treat as full
			}
		case unix.EINTR:
		case unix.EAGAIN:
			return true
		default:
			op.err = e
			return true
		}
	}
	return true
}

// tryWrite writes as much of b as the socket takes now, without waiting:
// n < len(b) with a nil error means the socket's send buffer is full.
func (c *conn) tryWrite(b []byte) (n int, err error) {
	op := writeOps.Get().(*writeOp)
	op.b, op.n, op.err = b, 0, nil
	cerr := c.sock.Write(op.fn)
	n, err = op.n, op.err
	op.b, op.err = nil, nil
	writeOps.Put(op)
	if cerr != nil && err == nil {
		err = cerr
	}
	return n, err
}
