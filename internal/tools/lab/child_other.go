//go:build !linux

package lab

import "os/exec"

// dieWithParent: only Linux has a parent-death signal; elsewhere the child
// is stopped by the lab's cleanup alone.
func dieWithParent(*exec.Cmd) {}
