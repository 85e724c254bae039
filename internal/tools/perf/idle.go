package perf

import (
	"net"
	"sync"
)

// ServeIdleBaseline is the floor for memory per idle connection: a trivial
// TCP server that gives each connection one goroutine blocked in a plain Read
// into a small array on its stack, echoing what it reads. It is the least a
// goroutine-per-connection Go server can hold. It returns when ln is closed,
// after closing every connection.
func ServeIdleBaseline(ln net.Listener) {
	var (
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
		wg    sync.WaitGroup
	)
	for {
		nc, err := ln.Accept()
		if err != nil {
			break
		}
		mu.Lock()
		conns[nc] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b [64]byte
			for {
				n, err := nc.Read(b[:])
				if err != nil {
					break
				}
				if _, err := nc.Write(b[:n]); err != nil {
					break
				}
			}
			_ = nc.Close()
			mu.Lock()
			delete(conns, nc)
			mu.Unlock()
		}()
	}
	mu.Lock()
	for nc := range conns {
		_ = nc.Close()
	}
	mu.Unlock()
	wg.Wait()
}
