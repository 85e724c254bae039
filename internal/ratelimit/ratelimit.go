// Package ratelimit holds token buckets keyed by string (a client address,
// a username, a user id) in a table whose size is capped, so that keys an
// attacker makes up cannot grow memory. It must never import other Sori
// packages: accounts, chat and transports build on it.
package ratelimit

import (
	"container/list"
	"net"
	"net/http"
	"sync"
	"time"
)

// DefaultMaxKeys is the table size of a Limiter whose Config leaves MaxKeys
// zero.
const DefaultMaxKeys = 1 << 16

// Config configures a Limiter. Rate and Burst are required.
type Config struct {
	Rate    float64          // tokens added per second to each bucket
	Burst   int              // bucket capacity: requests allowed at once after a quiet spell
	MaxKeys int              // most buckets kept; 0 = DefaultMaxKeys
	Now     func() time.Time // nil = time.Now; tests pass a fake clock
}

// Limiter is a set of token buckets, one per key, each holding at most
// Burst tokens and refilled at Rate per second. A key seen for the first
// time starts full.
//
// A bucket that has refilled completely carries no information, so it is
// dropped. When MaxKeys buckets are in use, the least recently used one is
// dropped to make room: the table stays bounded at the price of forgetting
// (failing open for) the quietest key, never of refusing a new one.
//
// A Limiter is safe for concurrent use.
type Limiter struct {
	rate  float64
	burst float64
	max   int
	now   func() time.Time
	// full is how long an untouched bucket takes to refill from empty:
	// a bucket last touched longer ago than that is full and can go.
	full time.Duration

	mu      sync.Mutex
	buckets map[string]*list.Element // of *bucket
	lru     list.List                // front = most recently used
}

type bucket struct {
	key    string
	tokens float64
	at     time.Time // when tokens was computed
}

// New returns a Limiter for cfg. It panics when Rate or Burst is not
// positive: that is a programming error, and config validates user input.
func New(cfg Config) *Limiter {
	if cfg.Rate <= 0 || cfg.Burst <= 0 {
		panic("ratelimit: rate and burst must be positive")
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &Limiter{rate: cfg.Rate, burst: float64(cfg.Burst), max: cfg.MaxKeys, now: cfg.Now,
		buckets: make(map[string]*list.Element)}
	l.full = time.Duration(l.burst / l.rate * float64(time.Second))
	return l
}

// Allow takes a token from key's bucket. When the bucket is empty it takes
// nothing and returns false with how long until a token is there.
func (l *Limiter) Allow(key string) (wait time.Duration, ok bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expire(now)
	b := l.get(key, now)
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / l.rate * float64(time.Second)), false
}

// Refund gives back a token Allow took, for an attempt that turned out not
// to count (a login with the right password). A key no longer in the table
// is full already.
func (l *Limiter) Refund(key string) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.buckets[key]; ok {
		l.lru.MoveToFront(e)
		b := e.Value.(*bucket)
		l.refill(b, now)
		b.tokens = min(b.tokens+1, l.burst)
	}
}

// Len returns the number of buckets in the table.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// get returns key's bucket, refilled up to now, creating it (full) when
// absent. l.mu is held.
func (l *Limiter) get(key string, now time.Time) *bucket {
	if e, ok := l.buckets[key]; ok {
		l.lru.MoveToFront(e)
		b := e.Value.(*bucket)
		l.refill(b, now)
		return b
	}
	if len(l.buckets) >= l.max {
		l.remove(l.lru.Back())
	}
	b := &bucket{key: key, tokens: l.burst, at: now}
	l.buckets[key] = l.lru.PushFront(b)
	return b
}

func (l *Limiter) refill(b *bucket, now time.Time) {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(b.tokens+d.Seconds()*l.rate, l.burst)
	}
	b.at = now
}

// expire drops buckets that have refilled completely, oldest first; it
// stops at the first one that has not, so each call does little work.
// l.mu is held.
func (l *Limiter) expire(now time.Time) {
	for e := l.lru.Back(); e != nil; e = l.lru.Back() {
		if now.Sub(e.Value.(*bucket).at) < l.full {
			return
		}
		l.remove(e)
	}
}

func (l *Limiter) remove(e *list.Element) {
	delete(l.buckets, e.Value.(*bucket).key)
	l.lru.Remove(e)
}

// ClientKey returns the key a request's client is limited under: the
// connection's remote IP (never a forwarding header, which the client
// writes), with an IPv6 address cut to its /64, since one host or home
// usually holds a whole /64 and could otherwise use a fresh key for every
// attempt.
func ClientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.To4() != nil {
		return host
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
