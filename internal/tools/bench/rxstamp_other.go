//go:build !linux

package bench

import "net"

// rxStamper: kernel receive times need Linux's SO_TIMESTAMPNS; elsewhere
// the application's clock is used.
type rxStamper struct{}

func newRxStamper(net.Conn) *rxStamper { return nil }

func (*rxStamper) Read([]byte) (int, error) { panic("bench: no rxStamper on this system") }

func (*rxStamper) lastRx() int64 { return 0 }
