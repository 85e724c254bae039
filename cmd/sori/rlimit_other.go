//go:build !unix

package main

import "errors"

// raiseOpenFiles: no RLIMIT_NOFILE outside Unix.
func raiseOpenFiles() (soft, hard uint64, err error) {
	return 0, 0, errors.New("no open-file limit on this system")
}
