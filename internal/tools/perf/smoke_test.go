package perf

import (
	"net"
	"testing"
	"time"
)

// TestHarnessSmoke runs every harness at a tiny size in the default test run,
// so that the measurements cannot rot unnoticed: all deliveries must arrive,
// latencies must be recorded, the idle baseline must echo.
func TestHarnessSmoke(t *testing.T) {
	for _, setup := range []func(testing.TB, int, int) *target{setupSori, setupRaw} {
		tg := setup(t, 20, 3)
		sat, err := tg.saturate(30, 2)
		if err != nil {
			tg.stop()
			t.Fatal(err)
		}
		if sat.deliveries <= 0 {
			t.Errorf("%s: no delivery rate", tg.name)
		}
		h, err := tg.paced(200, 100*time.Millisecond)
		tg.stop()
		if err != nil {
			t.Fatal(err)
		}
		if h.Count() == 0 {
			t.Errorf("%s: no latency recorded", tg.name)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { ServeIdleBaseline(ln); close(done) }()
	clients, err := idleConnect(ln.Addr().String(), "", "", 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := idleMessage("", "baseline", "", clients); err != nil {
		t.Error(err)
	}
	for _, c := range clients {
		_ = c.Close()
	}
	_ = ln.Close()
	<-done
}

func TestStampRoundTrip(t *testing.T) {
	for _, v := range []int64{0, 7, 1234567890123} {
		b := AppendStamp(nil, v, 5)
		if got := stampOf([]byte(`{"push":"pub","data":` + string(b) + `}`)); got != v {
			t.Errorf("stamp %d: read back %d from %s", v, got, b)
		}
	}
	if got := stampOf([]byte(`{"push":"pub"}`)); got != -1 {
		t.Errorf("no stamp: got %d, want -1", got)
	}
}
