package ratelimit_test

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/ratelimit"
)

// clock is a fake clock that moves only when told.
type clock struct{ t time.Time }

func (c *clock) now() time.Time                 { return c.t }
func (c *clock) add(d time.Duration)            { c.t = c.t.Add(d) }
func newClock() *clock                          { return &clock{t: time.Unix(1_700_000_000, 0)} }
func allow(l *ratelimit.Limiter, k string) bool { _, ok := l.Allow(k); return ok }

func TestBurstThenRefillAtRate(t *testing.T) {
	c := newClock()
	l := ratelimit.New(ratelimit.Config{Rate: 2, Burst: 3, Now: c.now})
	for i := range 3 {
		if !allow(l, "a") {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	wait, ok := l.Allow("a")
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("over the burst: ok=%v wait=%v, want refused, wait 500ms", ok, wait)
	}
	if !allow(l, "b") {
		t.Fatal("another key shares the bucket")
	}
	c.add(250 * time.Millisecond)
	if wait, ok := l.Allow("a"); ok || wait != 250*time.Millisecond {
		t.Fatalf("half a token later: ok=%v wait=%v, want refused, wait 250ms", ok, wait)
	}
	c.add(250 * time.Millisecond)
	if !allow(l, "a") {
		t.Fatal("a token later: refused")
	}
	if allow(l, "a") {
		t.Fatal("the refilled token was used twice")
	}
	c.add(time.Hour) // a bucket never holds more than the burst
	for range 3 {
		allow(l, "a")
	}
	if allow(l, "a") {
		t.Fatal("an hour of quiet gave more than the burst")
	}
}

func TestRefundGivesBackOneToken(t *testing.T) {
	c := newClock()
	l := ratelimit.New(ratelimit.Config{Rate: 1.0 / 60, Burst: 2, Now: c.now})
	allow(l, "alice")
	allow(l, "alice")
	l.Refund("alice")
	if !allow(l, "alice") {
		t.Fatal("refunded token missing")
	}
	if allow(l, "alice") {
		t.Fatal("empty bucket allowed")
	}
	l.Refund("nobody") // unknown keys are full: nothing to do
	if l.Len() != 1 {
		t.Fatalf("Refund of an unknown key added a bucket: %d buckets", l.Len())
	}
	for range 5 {
		l.Refund("alice")
	}
	allow(l, "alice")
	allow(l, "alice")
	if allow(l, "alice") {
		t.Fatal("refunds filled the bucket past its burst")
	}
}

func TestTableStaysBounded(t *testing.T) {
	c := newClock()
	l := ratelimit.New(ratelimit.Config{Rate: 1, Burst: 1, MaxKeys: 100, Now: c.now})
	for i := range 10_000 { // made-up keys, all at once
		allow(l, strconv.Itoa(i))
	}
	if l.Len() != 100 {
		t.Fatalf("%d buckets, want the cap of 100", l.Len())
	}
	// The most recent keys are remembered; the evicted oldest start full.
	if allow(l, "9999") {
		t.Fatal("a recent key's empty bucket was forgotten")
	}
	if !allow(l, "0") {
		t.Fatal("an evicted key did not start full")
	}
	// Buckets that have refilled are dropped.
	c.add(2 * time.Second)
	allow(l, "x")
	if l.Len() != 1 {
		t.Fatalf("%d buckets after everything refilled, want 1", l.Len())
	}
}

func TestClientKey(t *testing.T) {
	for addr, want := range map[string]string{
		"192.0.2.7:5000":                  "192.0.2.7",
		"[2001:db8:1:2:aaaa::1]:443":      "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff:ffff::9]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:3::1]:443":           "2001:db8:1:3::/64",
		"[::1]:80":                        "::/64",
		"pipe":                            "pipe",
	} {
		r := &http.Request{RemoteAddr: addr}
		if got := ratelimit.ClientKey(r); got != want {
			t.Errorf("ClientKey(%q) = %q, want %q", addr, got, want)
		}
	}
}

func ExampleLimiter() {
	l := ratelimit.New(ratelimit.Config{Rate: 10.0 / 60, Burst: 2}) // 10 a minute, 2 at once
	for range 3 {
		wait, ok := l.Allow("192.0.2.7")
		fmt.Println(ok, wait.Round(time.Second))
	}
	// Output:
	// true 0s
	// true 0s
	// false 6s
}

func TestConcurrentUseStaysBounded(t *testing.T) {
	c := newClock()
	l := ratelimit.New(ratelimit.Config{Rate: 1, Burst: 100, MaxKeys: 10, Now: c.now})
	allowed := make(chan bool, 400)
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 100 {
				_, ok := l.Allow("shared")
				allowed <- ok
				l.Allow(strconv.Itoa(g*100 + i)) // churns the table
			}
		}()
	}
	for range 4 {
		<-done
	}
	close(allowed)
	n := 0
	for ok := range allowed {
		if ok {
			n++
		}
	}
	// The shared key may be evicted by the churn and start full again, so
	// at least the burst gets through; without eviction exactly the burst.
	if n < 100 {
		t.Fatalf("%d of 400 allowed, want at least the burst of 100", n)
	}
	if l.Len() > 10 {
		t.Fatalf("%d buckets, over the cap of 10", l.Len())
	}
}
