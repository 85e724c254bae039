// Package servertest runs a real Sori server in-process on a random
// loopback port, for the tests of packages that drive one from outside (the
// load generator, the lab). It must never import transport, session, hub,
// chat or store: it knows the server only through its exported API.
package servertest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/config"
	"github.com/sori-dev/sori/internal/server"
)

// Start serves cfg on 127.0.0.1 at a random port until the test ends, and
// returns the base URL ("http://127.0.0.1:port"). cfg.DataDir is replaced
// by a fresh temporary directory (so no test writes into the source tree or
// shares a database), and TURN is switched off (its fixed port may be taken
// by another test run). The cleanup shuts the server down
// and waits for Serve to return.
func Start(t testing.TB, cfg config.Config) string {
	t.Helper()
	cfg.DataDir = t.TempDir()
	cfg.TURNEnabled = false
	srv, err := server.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return "http://" + ln.Addr().String()
}
