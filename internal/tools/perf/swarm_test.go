package perf

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A swarm is the idle-memory and churn measurements' load generator, spread
// over child processes (the test binary re-executed with childEnv=swarmRole):
// each child holds at most swarmPerChild connections, all from a source
// address of its own (a fresh one for each dial command). Two limits bounded a one-process client: the open
// files of one process (20,000 here, and a non-root user cannot raise the
// hard limit) and the ephemeral ports of one source address (~28,000, fewer
// while closed connections sit in TIME_WAIT). Every dial of a test process
// takes a source address never used before in it (127.1.0.1, 127.1.0.2, …;
// Linux answers for all of 127/8 on lo), so ports are never held by the
// TIME_WAIT of an earlier round or churn cycle.
//
// A child takes line commands on stdin and answers each with "ok" or
// "err <text>" on stdout:
//
//	dial N IP     open N more connections from source address IP (WebSocket: connect + subscribe to the channel)
//	await MARKER  every connection reads until a frame containing MARKER
//	echo MARKER   every connection sends MARKER, then reads until it comes back
//	close         close every connection
//
// It exits when stdin closes.
type swarm struct {
	kids     []*swarmKid
	perChild int
}

type swarmKid struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	held int // connections it holds (parent's count)
}

const (
	swarmRole     = "swarm"
	swarmEnv      = "SORI_PERF_SWARM" // the child's target: addr, path and channel, "|"-separated
	swarmPerChild = 10000
)

// swarmIPs numbers the source addresses this process handed out.
var swarmIPs atomic.Uint32

func nextSwarmIP() net.IP {
	n := swarmIPs.Add(1) // 127.1.0.1 onwards: 127.1.0.0/16 has 65,535 hosts
	return net.IPv4(127, 1, byte(n>>8), byte(n))
}

// startSwarm starts enough children to hold n connections to addr at once
// (at most perChild each; 0: swarmPerChild). path "" speaks the raw
// harness's framing to ServeIdleBaseline. The children end with the test.
func startSwarm(t testing.TB, addr, path, channel string, n, perChild int) *swarm {
	t.Helper()
	if perChild <= 0 {
		perChild = swarmPerChild
	}
	s := &swarm{perChild: perChild}
	t.Cleanup(s.stop)
	for range max((n+perChild-1)/perChild, 1) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+swarmRole,
			swarmEnv+"="+strings.Join([]string{addr, path, channel}, "|"))
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start swarm child: %v", err)
		}
		s.kids = append(s.kids, &swarmKid{cmd: cmd, in: in, out: bufio.NewReader(out)})
	}
	return s
}

// dial opens n more connections, spread evenly over the children.
func (s *swarm) dial(n int) error {
	k := len(s.kids)
	return s.each(func(i int, kid *swarmKid) string {
		m := n/k + btoi(i < n%k)
		if kid.held+m > s.perChild {
			m = s.perChild - kid.held // cannot happen for n within the swarm's size
		}
		kid.held += m
		return "dial " + strconv.Itoa(m) + " " + nextSwarmIP().String()
	})
}

// await has every connection read until a frame containing marker.
func (s *swarm) await(marker string) error {
	return s.each(func(int, *swarmKid) string { return "await " + marker })
}

// echo has every connection send marker and read it back.
func (s *swarm) echo(marker string) error {
	return s.each(func(int, *swarmKid) string { return "echo " + marker })
}

// closeAll closes every connection.
func (s *swarm) closeAll() error {
	return s.each(func(_ int, kid *swarmKid) string { kid.held = 0; return "close" })
}

// each sends every child its command, then collects the answers: the
// children work in parallel.
func (s *swarm) each(cmd func(i int, kid *swarmKid) string) error {
	for i, kid := range s.kids {
		if _, err := io.WriteString(kid.in, cmd(i, kid)+"\n"); err != nil {
			return fmt.Errorf("swarm child %d: %w", i, err)
		}
	}
	var errs []error
	for i, kid := range s.kids {
		line, err := kid.out.ReadString('\n')
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("swarm child %d: %w", i, err))
		case strings.TrimSpace(line) != "ok":
			errs = append(errs, fmt.Errorf("swarm child %d: %s", i, strings.TrimSpace(line)))
		}
	}
	return errors.Join(errs...)
}

// stop ends the children: closing stdin closes their connections.
func (s *swarm) stop() {
	for _, kid := range s.kids {
		_ = kid.in.Close()
	}
	for _, kid := range s.kids {
		done := make(chan struct{})
		go func() { _ = kid.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = kid.cmd.Process.Kill()
			<-done
		}
	}
	s.kids = nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// runSwarmChild is a swarm child's main loop (see swarm).
func runSwarmChild() error {
	raiseFileLimit()
	f := strings.Split(os.Getenv(swarmEnv), "|")
	if len(f) != 3 {
		return fmt.Errorf("%s: want addr|path|channel, got %q", swarmEnv, os.Getenv(swarmEnv))
	}
	addr, path, channel := f[0], f[1], f[2]
	var clients []*Client
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		verb, arg, _ := strings.Cut(in.Text(), " ")
		var err error
		switch verb {
		case "dial":
			count, from, _ := strings.Cut(arg, " ")
			var n int
			ip := net.ParseIP(from)
			if n, err = strconv.Atoi(count); err == nil && ip == nil {
				err = fmt.Errorf("dial: bad source address %q", from)
			}
			if err == nil {
				var more []*Client
				more, err = dialManyFrom(addr, path, ip, n, 512, func(int) string { return channel })
				clients = append(clients, more...)
			}
		case "await":
			err = awaitAll(clients, []byte(arg), false)
		case "echo":
			err = awaitAll(clients, []byte(arg), true)
		case "close":
			for _, c := range clients {
				_ = c.Close()
			}
			clients = nil
		default:
			err = fmt.Errorf("unknown command %q", verb)
		}
		if err != nil {
			fmt.Printf("err %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
		} else {
			fmt.Println("ok")
		}
	}
	for _, c := range clients {
		_ = c.Close()
	}
	return in.Err()
}

// awaitAll has every client (after sending marker, with send) read until a
// frame containing marker, 16 at a time.
func awaitAll(clients []*Client, marker []byte, send bool) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  atomic.Int64
	)
	for range min(16, len(clients)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(clients); i = int(next.Add(1) - 1) {
				c := clients[i]
				var err error
				if send {
					err = c.Send(marker)
				}
				if err == nil {
					_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
					_, err = c.Until(marker)
					_ = c.SetReadDeadline(time.Time{})
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("client %d: %w", i, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
}
