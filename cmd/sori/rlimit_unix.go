//go:build unix

package main

import "syscall"

// raiseOpenFiles lifts the open-file soft limit to the hard limit and returns
// the limit in force. Every connection, TURN socket and store file takes a
// descriptor: at the common soft limit of 1,024, a thousand idle sockets
// would stop the server accepting anyone. (Go raises the limit itself since
// 1.19 on some systems; doing it here makes it sure, and the caller logs it.)
func raiseOpenFiles() (soft, hard uint64, err error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, 0, err
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return 0, 0, err
		}
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return 0, 0, err
		}
	}
	return uint64(l.Cur), uint64(l.Max), nil
}
