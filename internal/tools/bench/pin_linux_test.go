//go:build linux

package bench

import (
	"os"
	"os/exec"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPinProcessBindsEveryThread: pinning a process binds each of its
// threads, and threads it starts later inherit the binding.
func TestPinProcessBindsEveryThread(t *testing.T) {
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		t.Fatal(err)
	}
	// A child process, so that this test's process keeps its CPUs.
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep command:", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	cpu := -1
	for i := 0; i < 1024; i++ {
		if all.IsSet(i) {
			cpu = i // the last CPU this process may use
		}
	}
	if err := pinProcess(cmd.Process.Pid, cpu); err != nil {
		t.Fatal(err)
	}
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		tid, _ := strconv.Atoi(task.Name())
		var got unix.CPUSet
		if err := unix.SchedGetaffinity(tid, &got); err != nil {
			t.Fatal(err)
		}
		if got.Count() != 1 || !got.IsSet(cpu) {
			t.Fatalf("thread %d may run on %d CPUs, want only CPU %d", tid, got.Count(), cpu)
		}
	}
	if err := pinProcess(cmd.Process.Pid, 1<<20); err == nil {
		t.Fatal("pinning to a CPU that does not exist succeeded")
	}
}

// TestProcessCPUCounts: the CPU read from /proc/<pid>/stat grows with work
// done and matches the runtime's own account of this process within a tick.
func TestProcessCPUCounts(t *testing.T) {
	before, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for after := before; after < before+0.05; {
		for i := range 1 << 20 {
			x += i * i
		}
		if after, err = processCPU(os.Getpid()); err != nil {
			t.Fatal(err)
		}
	}
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	now, _ := processCPU(os.Getpid())
	self := float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	if d := self - now; d < -0.05 || d > 0.05 {
		t.Fatalf("/proc says %.2fs of CPU, getrusage %.2fs (%d)", now, self, x&1)
	}
	if _, err := processCPU(1 << 30); err == nil {
		t.Fatal("a process that does not exist has a CPU time")
	}
}
