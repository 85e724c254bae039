//go:build !linux

package netpoll

import (
	"log/slog"
	"syscall"
)

// Watcher is a stub on systems without epoll: every Watch fails with
// ErrUnsupported and the caller waits on a goroutine.
type Watcher struct{}

// Watch is one socket's registration (never made here).
type Watch struct{}

// New returns a Watcher.
func New(*slog.Logger) *Watcher { return &Watcher{} }

// Watch returns ErrUnsupported.
func (*Watcher) Watch(syscall.RawConn, func()) (*Watch, error) { return nil, ErrUnsupported }

// Stop does nothing.
func (*Watch) Stop() {}
