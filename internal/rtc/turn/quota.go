package turn

import (
	"sync"
	"time"
)

// reservationTTL bounds how long a quota slot granted to an Allocate request waits for
// the allocation to be created. pion calls the quota handler before it opens the relay
// socket, and says nothing when that fails, so an unclaimed slot must expire on its own.
const reservationTTL = 10 * time.Second

// quota counts live allocations per user. pion asks quota.reserve before creating an
// allocation and reports the creation and deletion afterwards; a reservation holds the slot
// in between, so concurrent Allocate requests of one user (TCP connections are served
// concurrently) cannot overshoot the limit. Safe for concurrent use.
type quota struct {
	limit int // <= 0: unlimited

	mu       sync.Mutex
	active   map[string]int
	reserved map[string][]time.Time // reservation times, oldest first
}

func newQuota(limit int) *quota {
	return &quota{limit: limit, active: map[string]int{}, reserved: map[string][]time.Time{}}
}

// reserve takes a slot for user, or reports false when the user is at the limit.
func (q *quota) reserve(user string, now time.Time) bool {
	if q.limit <= 0 {
		return true
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	res := q.reserved[user]
	for len(res) > 0 && now.Sub(res[0]) > reservationTTL {
		res = res[1:]
	}
	if q.active[user]+len(res) >= q.limit {
		q.store(user, res)
		return false
	}
	q.store(user, append(res, now))
	return true
}

// created turns the user's oldest reservation into a live allocation.
func (q *quota) created(user string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if res := q.reserved[user]; len(res) > 0 {
		q.store(user, res[1:])
	}
	q.active[user]++
}

// deleted releases a live allocation.
func (q *quota) deleted(user string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if n := q.active[user] - 1; n > 0 {
		q.active[user] = n
	} else {
		delete(q.active, user)
	}
}

// activeFor reports the user's live allocations.
func (q *quota) activeFor(user string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.active[user]
}

func (q *quota) store(user string, res []time.Time) {
	if len(res) == 0 {
		delete(q.reserved, user)
		return
	}
	q.reserved[user] = res
}
