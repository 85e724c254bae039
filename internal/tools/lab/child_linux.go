package lab

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel send the child server SIGTERM when the lab
// dies without its cleanup (SIGKILL, SIGPIPE, a panic), so no server is left
// running. The signal follows the OS thread that started the child; Go ends
// threads only for goroutines that exit while locked to one, which lab
// never does.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
