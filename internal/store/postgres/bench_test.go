package postgres

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/store"
	"github.com/sori-dev/sori/internal/store/sqlite"
)

// BenchmarkDurableAppend measures acknowledged (committed) messages per
// second from concurrent senders, each with one append in flight, each on
// its own room: the SQLite store (one node, group commit) as the baseline,
// then this store with three Stores on one database, as three nodes would
// run. Appends are latency-bound: a sender waits for its batch's commit,
// so the rate is senders / commit cycle, and the sender count (64, 256) is
// a dimension of its own. Cases: senders over as many rooms; the same with
// a client id on every message (as the web app sends them); one hot room
// that all three nodes contend for; one node; one transaction per message
// (the no-batching baseline); and "two-trips", every batch sent the way the
// writer did before the one-round-trip path, for a same-run ratio. One op
// is one message; compare msgs/s (and pg-µs/msg, PostgreSQL's CPU per
// message, read from /proc) within a run.
//
// pg_virtualenv makes clusters with fsync off; -o fsync=on measures commits
// that survive a machine crash:
//
//	pg_virtualenv -t -o fsync=on sh -c 'SORI_TEST_POSTGRES="host=$PGHOST port=$PGPORT user=$PGUSER password=$PGPASSWORD dbname=$PGDATABASE" \
//	  go test -run "^$" -bench DurableAppend -benchtime 20000x ./internal/store/postgres'
func BenchmarkDurableAppend(b *testing.B) {
	for _, senders := range []int{64, 256} {
		b.Run(fmt.Sprintf("sqlite-1-node-%d-senders", senders), func(b *testing.B) {
			s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), sqlite.DefaultFileName), sqlite.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			benchAppend(b, []store.Store{s}, senders, senders, false)
		})
	}
	for _, c := range []struct {
		name                  string
		nodes, senders, rooms int
		clientIDs             bool
		opts                  Options
	}{
		{"postgres-3-nodes-64-senders", 3, 64, 64, false, Options{}},
		{"postgres-3-nodes-64-senders-two-trips", 3, 64, 64, false, Options{twoTrips: true}},
		{"postgres-3-nodes-256-senders", 3, 256, 256, false, Options{}},
		{"postgres-3-nodes-256-senders-two-trips", 3, 256, 256, false, Options{twoTrips: true}},
		{"postgres-3-nodes-64-senders-client-ids", 3, 64, 64, true, Options{}},
		{"postgres-3-nodes-64-senders-client-ids-two-trips", 3, 64, 64, true, Options{twoTrips: true}},
		{"postgres-3-nodes-64-senders-1-room", 3, 64, 1, false, Options{}},
		{"postgres-3-nodes-64-senders-1-room-two-trips", 3, 64, 1, false, Options{twoTrips: true}},
		{"postgres-1-node-64-senders", 1, 64, 64, false, Options{}},
		{"postgres-3-nodes-64-senders-one-tx-per-message", 3, 64, 64, false, Options{MaxBatch: 1}},
	} {
		b.Run(c.name, func(b *testing.B) {
			dsn := newSchema(b)
			var nodes []store.Store
			for range c.nodes {
				s := openDSN(b, dsn, c.opts)
				defer s.Close()
				nodes = append(nodes, s)
			}
			postmaster := postmasterPID(nodes[0].(*Store))
			pg0 := postgresCPU(postmaster)
			benchAppend(b, nodes, c.senders, c.rooms, c.clientIDs)
			if pg0 > 0 {
				b.ReportMetric(float64(postgresCPU(postmaster)-pg0)/float64(time.Microsecond)/float64(b.N), "pg-µs/msg")
			}
			var batches, events int64
			for _, n := range nodes {
				batches += n.(*Store).batches.Load()
				events += n.(*Store).batchedEvents.Load()
			}
			if batches > 0 {
				b.ReportMetric(float64(events)/float64(batches), "events/batch")
			}
		})
	}
}

// benchAppend runs senders goroutines spread evenly over nodes, sender g
// appending to room g%rooms, until b.N messages are committed. It reports
// msgs/s and this process's CPU per message.
func benchAppend(b *testing.B, nodes []store.Store, senders, rooms int, clientIDs bool) {
	ctx := context.Background()
	s := nodes[0]
	u, err := s.CreateUser(ctx, store.User{Username: "bench", PasswordHash: "h"})
	if err != nil {
		b.Fatal(err)
	}
	roomIDs := make([]int64, rooms)
	for i := range roomIDs {
		r, err := s.CreateRoom(ctx, store.Room{Name: fmt.Sprint("room-", i), Kind: store.RoomPublic, CreatedBy: u.ID})
		if err != nil {
			b.Fatal(err)
		}
		roomIDs[i] = r.ID
	}
	body := "a chat message of a typical length, about sixty-odd bytes long"
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	for g := range senders {
		wg.Go(func() {
			node, room := nodes[g%len(nodes)], roomIDs[g%rooms]
			for n := next.Add(1); n <= int64(b.N); n = next.Add(1) {
				ev := store.Event{Kind: store.EventMessage, UserID: u.ID, Body: body}
				if clientIDs {
					ev.ClientID = "c" + strconv.FormatInt(n, 36)
				}
				if _, err := node.AppendEvent(ctx, room, ev); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Microsecond)/float64(b.N), "go-µs/msg")
}

// processCPU is this process's user + system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// postmasterPID is the PID of the server s is connected to, if it runs on
// this machine (the parent of s's backend), or 0.
func postmasterPID(s *Store) int {
	var backend int
	if err := s.pool.QueryRow(context.Background(), `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		return 0
	}
	ppid, _, ok := procStat(backend)
	if !ok {
		return 0
	}
	return ppid
}

// postgresCPU sums the user + system CPU time of the server whose
// postmaster is pid and of its children (backends, WAL writer,
// checkpointer …), from /proc; 0 if pid is 0 or /proc is not there. The
// stores' connections stay open while it is read, so no backend's time is
// lost to its exit. Other sessions' PostgreSQL servers are not counted.
func postgresCPU(postmaster int) time.Duration {
	if postmaster == 0 {
		return 0
	}
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var total time.Duration
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if ppid, cpu, ok := procStat(pid); ok && (pid == postmaster || ppid == postmaster) {
			total += cpu
		}
	}
	return total
}

// procStat reads a process's parent and its user + system CPU time from
// /proc/PID/stat.
func procStat(pid int) (ppid int, cpu time.Duration, ok bool) {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, 0, false
	}
	// pid (comm) state ppid …: after the closing parenthesis, ppid is the
	// 2nd field, utime and stime the 12th and 13th.
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, 0, false
	}
	f := bytes.Fields(stat[end+1:])
	if len(f) < 13 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(string(f[1]))
	ut, _ := strconv.ParseInt(string(f[11]), 10, 64)
	st, _ := strconv.ParseInt(string(f[12]), 10, 64)
	return ppid, time.Duration(ut+st) * (time.Second / 100), true // USER_HZ, /proc's unit, is 100 on Linux
}
