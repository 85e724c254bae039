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
		if err == nil && tg.name == "sori" {
			err = smokeSwarm(t, tg.addr)
		}
		tg.stop()
		if err != nil {
			t.Fatal(err)
		}
		if h.Count() == 0 {
			t.Errorf("%s: no latency recorded", tg.name)
		}
	}

	// The baseline's echo, from a swarm's source address.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { ServeIdleBaseline(ln); close(done) }()
	clients, err := dialManyFrom(ln.Addr().String(), "", nextSwarmIP(), 3, 512, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := awaitAll(clients, []byte("hello"), true); err != nil {
		t.Error(err)
	}
	for _, c := range clients {
		_ = c.Close()
	}
	_ = ln.Close()
	<-done
}

// smokeSwarm runs the idle-memory and churn load generator at a tiny size
// against Sori at addr: a swarm of two child processes, each from a source
// address of its own, gets a publication each, then all go.
func smokeSwarm(t *testing.T, addr string) error {
	m, err := scrape(addr, connectionsGauge)
	if err != nil {
		return err
	}
	open := int(m[connectionsGauge]) // the fan-out fleet's
	sw := startSwarm(t, addr, "/ws", "perf:smoke", 3, 2)
	defer sw.stop()
	if len(sw.kids) != 2 {
		t.Errorf("swarm of 3 connections at 2 per child: %d children", len(sw.kids))
	}
	if err := sw.dial(3); err != nil {
		return err
	}
	waitSessions(t, addr, open+3)
	if err := idleMessage(addr, "sori", "perf:smoke", sw); err != nil {
		return err
	}
	if err := sw.closeAll(); err != nil {
		return err
	}
	waitSessions(t, addr, open)
	return nil
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
