//go:build !race

package sfu

// raceOn: see race_on_test.go.
const raceOn = false
