//go:build !linux

package ws

import "errors"

// pollSupported reports whether this system has a poller (Options.Poll):
// elsewhere an idle connection's reader waits on its goroutine.
const pollSupported = false

type poller struct{}

func newPoller(*Options) *poller { return nil }

func (*poller) arm(*conn) error { return errors.New("ws: no poller on this system") }

func (*poller) remove(*conn) {}
