//go:build !linux

package bench

import "errors"

var errNoPin = errors.New("bench: pinning and per-process CPU need Linux")

func pinProcess(int, int) error { return errNoPin }

func processCPU(int) (float64, error) { return 0, errNoPin }
func processRSS(int) (float64, error) { return 0, errNoPin }
