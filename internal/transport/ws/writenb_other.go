//go:build !linux

package ws

import "errors"

// writePoolSupported reports whether this system has non-blocking writes
// for the write pool (Options.WritePool): elsewhere each connection's
// writer is a goroutine of its own.
const writePoolSupported = false

func (c *conn) tryWrite([]byte) (int, error) {
	return 0, errors.New("ws: no write pool on this system")
}

// yielder: no write pool here, so nothing to yield.
type yielder struct{}

func newYielder() *yielder { return nil }

func (*yielder) yield() {}

func (*yielder) close() {}
