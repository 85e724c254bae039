package clock

import (
	"testing"
	"time"
)

func TestFakeRunsDueTimersInOrder(t *testing.T) {
	start := time.Unix(1000, 0)
	c := NewFake(start)
	var got []string
	c.AfterFunc(3*time.Second, func() { got = append(got, "3s") })
	c.AfterFunc(time.Second, func() {
		got = append(got, "1s")
		c.AfterFunc(time.Second, func() { got = append(got, "1s+1s at "+c.Now().Sub(start).String()) })
	})
	stopped := c.AfterFunc(2*time.Second, func() { got = append(got, "stopped") })
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop reports wrongly")
	}
	c.AfterFunc(time.Hour, func() { got = append(got, "hour") })
	c.Advance(5 * time.Second)
	want := []string{"1s", "1s+1s at 2s", "3s"}
	if len(got) != len(want) {
		t.Fatalf("ran %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("ran %v, want %v", got, want)
		}
	}
	if c.Now() != start.Add(5*time.Second) || c.Pending() != 1 {
		t.Fatalf("now %v, pending %d", c.Now(), c.Pending())
	}
}

func TestFakeWaitPending(t *testing.T) {
	c := NewFake(time.Unix(0, 0))
	done := make(chan struct{})
	go func() { c.WaitPending(0); close(done) }()
	c.AfterFunc(time.Second, func() {})
	<-done
}
