package bench_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sori-dev/sori/internal/server"
	"github.com/sori-dev/sori/internal/server/servertest"
	"github.com/sori-dev/sori/internal/tools/bench"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}

// startServer runs a real server in-process on a random loopback port.
func startServer(t *testing.T) string {
	cfg := server.DefaultConfig()
	cfg.APIKeys = []string{"bench-key"}
	cfg.TokenSecret = strings.Repeat("b", 32)
	return servertest.Start(t, cfg)
}

func TestShortRunAgainstInProcessServer(t *testing.T) {
	url := startServer(t)
	var progress bytes.Buffer
	rep, err := bench.Run(context.Background(), bench.Config{
		URL: url, APIKey: "bench-key", Conns: 20, SourceIPs: 3, Pattern: bench.PatternRooms, RoomSize: 5,
		Rate: 100, Size: 200, Duration: 1500 * time.Millisecond, Drain: 30 * time.Second, // ends when all arrived
		Interval: 250 * time.Millisecond, Progress: &progress, MaxErrors: 0,
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if rep.Connected != 20 || rep.Published == 0 || rep.Errors != 0 || rep.Disconnects != 0 {
		t.Fatalf("connected %d published %d errors %d (%s) disconnects %d", rep.Connected, rep.Published, rep.Errors, rep.FirstError, rep.Disconnects)
	}
	// Each publication goes to one room of 5: every expected delivery arrived.
	if rep.Expected != 5*rep.Published || rep.Delivered != rep.Expected || rep.Latency.Count != uint64(rep.Delivered) {
		t.Fatalf("published %d expected %d delivered %d latencies %d", rep.Published, rep.Expected, rep.Delivered, rep.Latency.Count)
	}
	l := rep.Latency
	if !(0 < l.P50 && l.P50 <= l.P99 && l.P99 <= l.Max) {
		t.Fatalf("latency summary not ordered: %+v", l)
	}
	// The default receive clock is the kernel's where it has one; its
	// times are wall-clock, as the publishers' send times (P50 > 0 above).
	if want := map[bool]string{true: bench.RxClockKernel, false: bench.RxClockApp}[runtime.GOOS == "linux"]; rep.RxClock != want {
		t.Fatalf("receive clock %q, want %q", rep.RxClock, want)
	}
	if runtime.GOOS == "linux" && rep.ClientCPU <= 0 {
		t.Fatalf("load generator CPU %v over a run that read %d deliveries", rep.ClientCPU, rep.Delivered)
	}
	if rep.ServerRSS <= 0 || rep.ServerCPU < 0 || len(rep.Series) == 0 {
		t.Fatalf("server RSS %v CPU %v, %d points", rep.ServerRSS, rep.ServerCPU, len(rep.Series))
	}
	if !strings.Contains(progress.String(), "deliveries/s") {
		t.Fatalf("no progress line: %q", progress.String())
	}
	var text, svg bytes.Buffer
	rep.WriteText(&text)
	if err := rep.WriteSVG(&svg); err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(svg.Bytes(), new(struct{})); err != nil {
		t.Fatalf("chart is not well-formed XML: %v", err)
	}
	if !strings.Contains(text.String(), "delivered") || !strings.Contains(svg.String(), "<polyline") {
		t.Fatalf("report text %q / svg without lines", text.String())
	}
}

func TestThresholdFailureStillReports(t *testing.T) {
	url := startServer(t)
	rep, err := bench.Run(context.Background(), bench.Config{
		URL: url, APIKey: "bench-key", Conns: 3, Pattern: bench.PatternPersonal, Rate: 50,
		Duration: 300 * time.Millisecond, Drain: 30 * time.Second, MinDeliveries: 1e12, MaxErrors: -1,
	})
	if !errors.Is(err, bench.ErrThreshold) || rep == nil || len(rep.Failed) != 1 || !strings.Contains(rep.Failed[0], "min-deliveries") {
		t.Fatalf("err %v, report %+v: want a min-deliveries threshold failure with the report", err, rep)
	}
	if rep.Delivered != rep.Expected {
		t.Fatalf("personal channels: delivered %d of %d", rep.Delivered, rep.Expected)
	}
}

func TestRefusesUnboundedOrRemoteRuns(t *testing.T) {
	for _, tc := range []struct {
		cfg  bench.Config
		want string
	}{
		{bench.Config{URL: "http://192.0.2.1:7700", APIKey: "k"}, "--allow-remote"},
		{bench.Config{APIKey: "k", Conns: 11, MaxConns: 10}, "--max-conns"},
		{bench.Config{APIKey: "k", Duration: time.Hour}, "--max-duration"},
		{bench.Config{APIKey: "k", Pattern: "star"}, "pattern"},
		{bench.Config{}, "--api-key"},
	} {
		if _, err := bench.Run(context.Background(), tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want mention of %s", tc.cfg, err, tc.want)
		}
	}
}

// TestRunThatMeasuredNothingFails: an unreachable server or a wrong API key
// is a failed run (non-zero exit in `sori bench`), not "delivered 0 of 0".
func TestRunThatMeasuredNothingFails(t *testing.T) {
	url := startServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there any more
	for name, cfg := range map[string]bench.Config{
		"unreachable":   {URL: closed, APIKey: "bench-key"},
		"wrong API key": {URL: url, APIKey: "not-the-key"},
	} {
		cfg.Conns, cfg.Rate, cfg.Duration, cfg.Drain = 3, 20, 300*time.Millisecond, 100*time.Millisecond
		rep, err := bench.Run(context.Background(), cfg)
		if !errors.Is(err, bench.ErrThreshold) || rep == nil {
			t.Fatalf("%s: %v, want a failed run with a report", name, err)
		}
		if rep.Connected != 0 || !strings.Contains(err.Error(), "measured nothing") || rep.FirstError == "" {
			t.Errorf("%s: connected %d, err %v, first error %q", name, rep.Connected, err, rep.FirstError)
		}
	}
}

// TestServerCPUFromProc: with --server-pid the server's CPU comes from
// /proc/<pid>/stat (here the test process, which runs the server) and the
// report says so.
func TestServerCPUFromProc(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux")
	}
	url := startServer(t)
	rep, err := bench.Run(context.Background(), bench.Config{
		URL: url, APIKey: "bench-key", Conns: 10, SourceIPs: 1, Rate: 200, Duration: time.Second,
		Drain: 30 * time.Second, MaxErrors: 0, ServerPID: os.Getpid(),
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if rep.ServerCPU <= 0 || rep.ServerCPUPerDel <= 0 || rep.Config.ServerPID != os.Getpid() || rep.Config.CPUCore != -1 {
		t.Fatalf("server CPU %v s, %v µs/delivery, config %+v", rep.ServerCPU, rep.ServerCPUPerDel, rep.Config)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	if !strings.Contains(text.String(), "CPU from /proc") {
		t.Fatalf("report does not say where CPU came from: %s", text.String())
	}
	if _, err := bench.Run(context.Background(), bench.Config{URL: url, APIKey: "bench-key", PinServer: true}); err == nil {
		t.Fatal("pinning a server without its pid ran")
	}
}

// FindRate steps the offered rate until the server does not keep up, then
// measures at Load × the highest rate that kept up.
func TestFindRateThenMeasureAtHalf(t *testing.T) {
	url := startServer(t)
	rep, err := bench.Run(context.Background(), bench.Config{
		URL: url, APIKey: "bench-key", Conns: 10, SourceIPs: 2, Pattern: bench.PatternRoom,
		Rate: 50, FindRate: true, StepDuration: 300 * time.Millisecond, Duration: 500 * time.Millisecond,
		Drain: 30 * time.Second, MaxErrors: -1,
	})
	if err != nil && !errors.Is(err, bench.ErrThreshold) {
		t.Fatalf("run: %v", err)
	}
	if len(rep.Steps) < 2 {
		t.Fatalf("%d steps: the search needs one that keeps up and one that does not: %+v", len(rep.Steps), rep.Steps)
	}
	kept, missed := false, false
	for _, st := range rep.Steps {
		kept, missed = kept || st.KeptUp, missed || !st.KeptUp
		if st.KeptUp && st.Rate > rep.SaturatingRate {
			t.Fatalf("step %+v kept up above the saturating rate %v", st, rep.SaturatingRate)
		}
	}
	if !missed {
		t.Fatalf("no step failed to keep up: %+v", rep.Steps)
	}
	// Each step measures the load generator's CPU (this process: the
	// in-process server's too). A step of 800 pub/s or more uses several
	// of /proc's 10 ms ticks of it.
	if runtime.GOOS == "linux" {
		for _, st := range rep.Steps {
			if st.Rate >= 800 && st.ClientCPUShare <= 0 {
				t.Fatalf("no CPU share measured in step %+v", st)
			}
		}
	}
	if kept && rep.Config.Rate != rep.SaturatingRate*0.5 {
		t.Fatalf("measured at %v pub/s, want half of %v", rep.Config.Rate, rep.SaturatingRate)
	}
}
