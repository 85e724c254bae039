//go:build !linux

package sfu

import (
	"net"
	"time"
)

func rxStamps(*net.UDPConn) bool { return false }

func readStamped(c *net.UDPConn, b, _ []byte) (int, net.Addr, time.Time, error) {
	n, addr, err := c.ReadFrom(b)
	return n, addr, time.Now(), err
}
