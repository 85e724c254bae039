// Command sori is the Sori real-time server and its tools.
//
//	sori serve      run the server
//	sori token      mint a connection token for a user
//	sori user       add, list and reset chat users
//	sori bench      load a server and report deliveries, latency, CPU, RSS
//	sori lab        compare transports (polling … WebSocket) in numbers
//	sori lab rtc    compare mesh and SFU calls in numbers
//	sori version    print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sori-dev/sori/internal/auth"
	"github.com/sori-dev/sori/internal/config"
	"github.com/sori-dev/sori/internal/server"
)

func main() { os.Exit(exitCode(run(os.Args[1:], os.Stdout, os.Stderr), os.Stderr)) }

// errUsage: the command line was incomplete and the usage has been shown.
var errUsage = errors.New("usage")

// exitCode reports err and picks the exit status: 0 when it ran or when help
// was asked for (-h, --help), 2 for a command line it could not use, 1 for
// a command that ran and failed.
func exitCode(err error, stderr io.Writer) int {
	var uerr usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.As(err, &uerr):
		fmt.Fprintln(stderr, "sori:", err)
		return 2
	}
	fmt.Fprintln(stderr, "sori:", err)
	return 1
}

// usageError is a command line that cannot be run as written: an unknown
// command or flag, a missing or an unexpected argument.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// parseFlags parses args with fs and refuses what is left over: a stray word
// would otherwise stop flag parsing there and silently drop every later flag
// ("sori serve extra --listen :8080" listened on the default address).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("%s: unexpected argument %q (flags start with -)", fs.Name(), fs.Arg(0))
	}
	return nil
}

const usage = `Sori: real-time channels, chat and calls in one binary.

Usage:
  sori serve [flags]     run the server (sori serve --help lists every flag)
  sori token [flags]     mint a connection token for a user
  sori user add|list|reset-password   manage chat users (sori user for help)
  sori bench [flags]     load a server: deliveries/s, latency, server CPU and RSS
  sori lab [flags]       compare polling, long polling, SSE and WebSocket in numbers
  sori lab rtc [flags]   calls in numbers: per participant bytes/s and server CPU, mesh vs SFU
  sori version           print the version
`

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "token":
		return token(args[1:], stdout, stderr)
	case "user":
		return user(args[1:], os.Stdin, stdout, stderr)
	case "bench":
		return benchCmd(args[1:], stdout, stderr)
	case "lab":
		return labCmd(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "sori", server.Version)
		return nil
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usagef("unknown command %q", args[0])
}

// loadConfig reads defaults, the config file, SORI_* variables and flags.
// It returns a pointer: the flags are bound to its fields and fill them when
// the caller parses the flag set. With only, the flag set offers just those
// server settings (and --config): a tool such as `sori token` needs the data
// dir and the token settings, not fifty server flags in its help.
func loadConfig(name string, args []string, stderr io.Writer, only ...string) (*config.Config, *flag.FlagSet, error) {
	cfg := server.DefaultConfig()
	if path := config.ConfigFileFromArgs(args); path != "" {
		if err := cfg.LoadFile(path); err != nil {
			return &cfg, nil, err
		}
	}
	fs := flag.NewFlagSet("sori "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("config", "", "JSON config file (keys as in docs/operations.md) [$SORI_CONFIG]")
	all := fs
	if len(only) > 0 {
		all = flag.NewFlagSet("", flag.ContinueOnError)
	}
	if err := cfg.Bind(all); err != nil {
		return &cfg, nil, err
	}
	for _, n := range only {
		f := all.Lookup(n)
		fs.Var(f.Value, f.Name, f.Usage)
	}
	return &cfg, fs, nil
}

// existingDataDir refuses a data dir that does not exist: only `sori serve`
// creates one. A mistyped --data would otherwise get fresh secrets, and a
// token minted with them fails on the real server with 113.
func existingDataDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data dir %s does not exist: `sori serve --data %s` creates it; check --data", dir, dir)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data dir %s is not a directory", dir)
	}
	return nil
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func serve(args []string, stderr io.Writer) error {
	cfg, fs, err := loadConfig("serve", args, stderr)
	if err != nil {
		return err
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: sori serve [flags]\n\nRuns the server on embedded defaults: no external service is needed.\nEvery flag can also be set by the SORI_* variable shown, or in the --config file.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log := newLogger(*cfg, stderr)
	if soft, hard, err := raiseOpenFiles(); err != nil {
		log.Warn("cannot raise the open-files limit", "err", err)
	} else if soft < 4096 {
		log.Warn("open-files limit is low: each connection takes one; raise the hard limit (ulimit -Hn, LimitNOFILE=)", "soft", soft, "hard", hard)
	} else {
		log.Info("open-files limit", "soft", soft, "hard", hard)
	}
	srv, err := server.New(*cfg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	stop()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout.D())
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("shutdown incomplete", "err", err)
	}
	return <-errc
}

func token(args []string, stdout, stderr io.Writer) error {
	cfg, fs, err := loadConfig("token", args, stderr, "data", "token-secret", "token-issuer", "token-audience")
	if err != nil {
		return err
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: sori token --user ID [flags]\n\nMints a connection token with the data dir's secret (or --token-secret) for the\nserver that uses that data dir, and prints it.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	user := fs.String("user", "", "user id (the token's subject); required")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	var channels, publish stringList
	fs.Var(&channels, "channel", "channel (or prefix ending in *) the token may subscribe to; repeatable")
	fs.Var(&publish, "publish", "channel (or prefix ending in *) the token may publish to; repeatable")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *user == "" {
		return usagef("token: --user is required")
	}
	secret := cfg.TokenSecret
	if secret == "" && cfg.ClusterMode() {
		return config.ErrClusterSecrets
	}
	if secret == "" {
		if err := existingDataDir(cfg.DataDir); err != nil {
			return fmt.Errorf("token: %w", err)
		}
		s, err := config.LoadOrCreateSecrets(cfg.DataDir)
		if err != nil {
			return err
		}
		secret = s.TokenSecret
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{HMACSecret: []byte(secret), Issuer: cfg.TokenIssuer, Audience: cfg.TokenAudience})
	if err != nil {
		return err
	}
	c := auth.NewClaims(*user, *ttl, time.Now(), channels...)
	c.Publish = publish
	tok, err := v.Mint(c)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

type stringList []string

func (l *stringList) String() string     { return fmt.Sprint(*l) }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }
