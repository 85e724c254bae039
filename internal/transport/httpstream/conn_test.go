package httpstream

import (
	"sync"
	"testing"
)

// TestPingDoesNotRaceWithTheDownstream: Ping is called by the node's
// heartbeat while the attached downstream takes the due heartbeat in next
// (under c.mu); Ping must not read c.ping outside the lock. Run with -race.
func TestPingDoesNotRaceWithTheDownstream(t *testing.T) {
	c := &conn{wake: make(chan struct{}, 1)}
	var wg sync.WaitGroup
	wg.Add(1)
	start := make(chan struct{})
	go func() {
		defer wg.Done()
		<-start
		for range 20000 {
			c.mu.Lock()
			_, c.ping = c.ping, false // what next does
			c.mu.Unlock()
		}
	}()
	close(start)
	for i := range 20000 {
		if i%2 == 0 {
			c.mu.Lock()
			c.kick = make(chan struct{})
			c.mu.Unlock()
		} else {
			c.mu.Lock()
			c.kick = nil
			c.mu.Unlock()
		}
		c.Ping()
	}
	wg.Wait()
}
