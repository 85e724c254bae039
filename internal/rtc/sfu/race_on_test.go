//go:build race

package sfu

// raceOn: the race detector makes every peer connection several times
// slower, so the heaviest tests use fewer of them.
const raceOn = true
