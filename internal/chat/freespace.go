//go:build unix

package chat

import (
	"fmt"
	"syscall"
)

// freeSpace returns the bytes an unprivileged process may still write on
// the file system of dir (statfs f_bavail: what root's reserved blocks
// leave to the server).
func freeSpace(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil // the field types differ between unix systems
}
