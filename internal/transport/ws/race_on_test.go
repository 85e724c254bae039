//go:build race

package ws

// raceOn: the race detector allocates on its own, so allocation counts are
// checked without it.
const raceOn = true
