//go:build !race

package session

// raceOn: the race detector allocates on its own and sync.Pool drops a
// share of what it is given under it, so allocation counts are checked
// without it.
const raceOn = false
