package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sori-dev/sori/internal/tools/lab"
)

const labUsage = `Usage: sori lab [flags]

Runs one workload (a publisher, N readers, M messages of K bytes) over short
polling, long polling, SSE + POST, WebSocket and WebSocket with
permessage-deflate, and reports per delivered message: bytes on the wire
(counted at the client sockets, headers included), HTTP requests, delivery
latency p50/p99/max and server CPU time. By default the server is a child
process (this binary's "serve" on a free loopback port), so its CPU is measured
apart from the clients'. See docs/transports.md.

Flags:
`

func labFlags(cfg *lab.Config, stderr io.Writer) (fs *flag.FlagSet, transports, jsonOut, svgOut *string) {
	fs = flag.NewFlagSet("sori lab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, labUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.URL, "url", "", "measure a running server instead of a child process (its CPU figure then covers that whole process)")
	fs.StringVar(&cfg.APIKey, "api-key", os.Getenv("SORI_API_KEY"), "API key of the --url server, to mint tokens [$SORI_API_KEY]")
	fs.IntVar(&cfg.Readers, "readers", 20, "N: readers subscribed to the channel")
	fs.IntVar(&cfg.Messages, "messages", 100, "M: messages published")
	fs.IntVar(&cfg.Size, "size", 256, "K: bytes of each message's data")
	fs.Float64Var(&cfg.Rate, "rate", 50, "messages published per second")
	fs.DurationVar(&cfg.PollInterval, "poll-interval", 0, "short polling interval (default 500ms)")
	fs.DurationVar(&cfg.Drain, "drain", 0, "how long to wait for late deliveries (default 3s + poll interval)")
	transports = fs.String("transports", strings.Join(lab.AllTransports, ","), "transports to measure, comma-separated")
	jsonOut = fs.String("json", "", "write the results as JSON to this file")
	svgOut = fs.String("svg", "", "draw the results chart (SVG) to this file")
	return fs, transports, jsonOut, svgOut
}

const labRTCUsage = `Usage: sori lab rtc [flags]

Measures calls of N = --min…--max participants, as a peer-to-peer mesh and
through the SFU: per participant uplink and downlink (bytes/s at its peer
connections) and the server's CPU, with pion peers sending synthetic video
and audio through child servers on loopback. See docs/calls.md.

Flags:
`

func labRTCCmd(args []string, stdout, stderr io.Writer) error {
	var cfg lab.RTCConfig
	fs := flag.NewFlagSet("sori lab rtc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, labRTCUsage)
		fs.PrintDefaults()
	}
	fs.IntVar(&cfg.Min, "min", 2, "fewest participants")
	fs.IntVar(&cfg.Max, "max", 8, "most participants")
	fs.IntVar(&cfg.VideoBitrate, "video-bitrate", 200_000, "bit/s of each participant's synthetic video")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "wait after everyone receives everyone")
	fs.DurationVar(&cfg.Window, "window", 5*time.Second, "measurement window per N and mode")
	jsonOut := fs.String("json", "", "write the results as JSON to this file")
	svgOut := fs.String("svg", "", "draw the results chart (SVG) to this file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg.Progress = stderr
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rep, err := lab.RunRTC(ctx, cfg)
	if rep == nil {
		return err
	}
	rep.WriteTable(stdout)
	if werr := writeReport(rep, *jsonOut, *svgOut); werr != nil {
		return werr
	}
	return err
}

func labCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "rtc" {
		return labRTCCmd(args[1:], stdout, stderr)
	}
	var cfg lab.Config
	fs, transports, jsonOut, svgOut := labFlags(&cfg, stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg.Transports = strings.Split(*transports, ",")
	cfg.Progress = stderr
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rep, err := lab.Run(ctx, cfg)
	if rep == nil {
		return err
	}
	rep.WriteTable(stdout)
	if werr := writeReport(rep, *jsonOut, *svgOut); werr != nil {
		return werr
	}
	return err
}
