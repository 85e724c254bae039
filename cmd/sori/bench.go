package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/sori-dev/sori/internal/tools/bench"
)

const benchUsage = `Usage: sori bench [flags]

Loads a Sori server with WebSocket clients and reports what it delivered:
deliveries per second, delivery latency percentiles (publication sent through
the server API -> push read by a client), errors, disconnects, and the server's
RSS and CPU from its /metrics. Connections are spread over the loopback source
addresses 127.0.0.1..127.0.0.N to pass the ephemeral port limit of one address.
The target must be loopback unless --allow-remote is given; the run is bounded
by --max-conns and --max-duration. Exits non-zero when a threshold is missed.

Flags:
`

// benchFlags binds every bench.Config field to a flag.
func benchFlags(cfg *bench.Config, stderr io.Writer) (fs *flag.FlagSet, jsonOut, svgOut *string) {
	fs = flag.NewFlagSet("sori bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, benchUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:7700", "server base URL")
	fs.StringVar(&cfg.APIKey, "api-key", os.Getenv("SORI_API_KEY"), "server API key, used to mint tokens and publish [$SORI_API_KEY]")
	fs.IntVar(&cfg.Conns, "conns", 100, "WebSocket connections to open")
	fs.IntVar(&cfg.MaxConns, "max-conns", 10000, "refuse to open more connections than this")
	fs.Float64Var(&cfg.Ramp, "ramp", 1000, "connections opened per second")
	fs.IntVar(&cfg.SourceIPs, "source-ips", 4, "spread connections over 127.0.0.1..127.0.0.N (loopback targets)")
	fs.StringVar(&cfg.Pattern, "pattern", "room", "subscriptions: room (all in one channel), rooms (channels of --room-size), personal (one user:<id> each)")
	fs.IntVar(&cfg.RoomSize, "room-size", 10, "connections per room for --pattern rooms")
	fs.Float64Var(&cfg.Rate, "rate", 100, "publications per second, in total, through the server API")
	fs.IntVar(&cfg.Size, "size", 128, "bytes of each publication's data")
	fs.DurationVar(&cfg.Duration, "duration", 0, "how long to publish (default 10s)")
	fs.DurationVar(&cfg.MaxDuration, "max-duration", 0, "refuse a --duration above this (default 10m)")
	fs.DurationVar(&cfg.Drain, "drain", 0, "wait this long after publishing for late deliveries (default 2s)")
	fs.IntVar(&cfg.Publishers, "publishers", 4, "concurrent server API publishers")
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", false, "allow a target that is not a loopback address")
	fs.BoolVar(&cfg.Compression, "compression", false, "offer WebSocket permessage-deflate (Sori's protocol only)")
	fs.BoolVar(&cfg.FindRate, "find-rate", false, "first search the saturating publication rate (doubling from --rate, then bisecting; steps of --step), then measure at --load × that rate for --duration")
	fs.DurationVar(&cfg.StepDuration, "step", 0, "duration of each --find-rate step (default 2s)")
	fs.Float64Var(&cfg.Load, "load", 0.5, "share of the saturating rate the measured run offers, with --find-rate")
	fs.StringVar(&cfg.Protocol, "protocol", "sori", "the server's protocol: sori, centrifugo (v6 JSON, --api-key is its HTTP API key), plain or socketio (the peers of scripts/bench-peers.sh)")
	fs.StringVar(&cfg.RxClock, "rx-clock", bench.RxClockKernel, "receive time of a delivery: kernel (when the data reached the client's socket, SO_TIMESTAMPNS; Linux) or app (when the client parsed it)")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "the server's process id on this machine: CPU from /proc/<pid>/stat (any server), pinning with --server-cpu")
	cpuFlag := func(name, usage string, pin *bool, core *int) {
		fs.Func(name, usage, func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fmt.Errorf("a CPU number (0, 1, …), not %q", v)
			}
			*pin, *core = true, n
			return nil
		})
	}
	cpuFlag("server-cpu", "pin the --server-pid process to this CPU (default: not pinned)", &cfg.PinServer, &cfg.ServerCPUCore)
	cpuFlag("cpu", "pin the load generator to this CPU (default: not pinned)", &cfg.PinSelf, &cfg.CPUCore)
	fs.Float64Var(&cfg.MinDeliveries, "min-deliveries", 0, "fail unless at least this many deliveries per second (0 = no check)")
	fs.DurationVar(&cfg.MaxP99, "max-p99", 0, "fail when delivery latency p99 is above this (0 = no check)")
	fs.IntVar(&cfg.MaxErrors, "max-errors", -1, "fail when errors + disconnects exceed this (-1 = no check)")
	fs.DurationVar(&cfg.Interval, "interval", 0, "progress line and chart interval (default 1s)")
	jsonOut = fs.String("json", "", "write the report as JSON to this file")
	svgOut = fs.String("svg", "", "draw the run's chart (SVG) to this file")
	return fs, jsonOut, svgOut
}

func benchCmd(args []string, stdout, stderr io.Writer) error {
	var cfg bench.Config
	fs, jsonOut, svgOut := benchFlags(&cfg, stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg.Progress = stderr
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rep, err := bench.Run(ctx, cfg)
	if rep == nil {
		return err
	}
	rep.WriteText(stdout)
	if werr := writeReport(rep, *jsonOut, *svgOut); werr != nil {
		return werr
	}
	return err
}

// writeReport writes the JSON and the SVG chart of a bench or lab report.
func writeReport(rep interface{ WriteSVG(io.Writer) error }, jsonPath, svgPath string) error {
	if jsonPath != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return fmt.Errorf("encode report: %w", err)
		}
		if err := os.WriteFile(jsonPath, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	if svgPath != "" {
		f, err := os.Create(svgPath)
		if err != nil {
			return fmt.Errorf("write chart: %w", err)
		}
		if err := rep.WriteSVG(f); err != nil {
			_ = f.Close()
			return fmt.Errorf("write chart: %w", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("write chart: %w", err)
		}
	}
	return nil
}
