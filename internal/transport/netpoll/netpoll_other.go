//go:build !linux

package netpoll

import "syscall"

// Supported reports whether this system has a poller: elsewhere every Arm
// fails with ErrUnsupported and callers wait on a goroutine.
const Supported = false

// Poller is a stub on systems without epoll.
type Poller[T any] struct{}

// NewPoller returns a Poller whose Arm always fails.
func NewPoller[T any](Options[T]) *Poller[T] { return &Poller[T]{} }

// Arm returns ErrUnsupported.
func (*Poller[T]) Arm(*Reg, syscall.RawConn, *T) error { return ErrUnsupported }

// Remove does nothing.
func (*Poller[T]) Remove(*Reg, syscall.RawConn) {}
