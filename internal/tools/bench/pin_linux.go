//go:build linux

package bench

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// pinProcess binds every thread of process pid (0: this process) to one
// CPU. Threads started later inherit the binding from the thread that
// starts them, so binding the existing ones binds the process.
func pinProcess(pid, cpu int) error {
	dir := "/proc/self/task"
	if pid != 0 {
		dir = "/proc/" + strconv.Itoa(pid) + "/task"
	}
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("pin: list threads: %w", err)
	}
	var set unix.CPUSet
	set.Set(cpu)
	pinned := 0
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil {
			if err == unix.ESRCH {
				continue // the thread ended meanwhile
			}
			return fmt.Errorf("pin thread %d to CPU %d: %w", tid, cpu, err)
		}
		pinned++
	}
	if pinned == 0 {
		return fmt.Errorf("pin: no thread of %s", dir)
	}
	return nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// processCPU returns the user+system CPU seconds process pid has used, from
// /proc/<pid>/stat (fields 14 and 15, after the parenthesized command name).
func processCPU(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("read CPU of %d: %w", pid, err)
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("read CPU of %d: malformed stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("read CPU of %d: malformed stat", pid)
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64) // field 14 overall
	stime, err2 := strconv.ParseUint(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("read CPU of %d: malformed stat", pid)
	}
	return float64(utime+stime) / clockTicks, nil
}

// processRSS returns the resident set of process pid in bytes, from
// /proc/<pid>/status (VmRSS).
func processRSS(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("bench: server RSS: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0, fmt.Errorf("bench: server RSS: %q: %w", line, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, errors.New("bench: server RSS: no VmRSS in /proc status")
}
