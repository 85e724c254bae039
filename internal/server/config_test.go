package server_test

import (
	"context"
	"github.com/sori-dev/sori/internal/store/sqlite"
	"go.uber.org/goleak"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sori-dev/sori/internal/config"
	"github.com/sori-dev/sori/internal/server"
)

// TestNamespaceConfigChecked: a namespace option that makes no sense stops
// the server at start with the option named, whether it comes from a config
// file or a test.
func TestNamespaceConfigChecked(t *testing.T) {
	for name, tc := range map[string]struct {
		ns   config.Namespace
		want string
	}{
		"bad publish":           {config.Namespace{Name: "x", Publish: "all"}, "publish"},
		"bad subscribe":         {config.Namespace{Name: "x", Subscribe: "everyone"}, "subscribe"},
		"join without presence": {config.Namespace{Name: "x", JoinLeave: true}, "presence"},
		"colon in name":         {config.Namespace{Name: "a:b"}, "prefix"},
	} {
		cfg := server.DefaultConfig()
		cfg.DataDir = t.TempDir()
		cfg.TURNEnabled = false
		cfg.Namespaces = append(cfg.Namespaces, tc.ns)
		s, err := server.New(cfg, nil)
		if err == nil {
			_ = s.Shutdown(context.Background())
			t.Errorf("%s: server started", name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %q", name, err, tc.want)
		}
	}
}

// TestNewFailureLeaksNothing: when New fails part-way (chat cannot start: its
// namespace is missing, or its database cannot be opened), every goroutine it
// started is gone when it returns.
func TestNewFailureLeaksNothing(t *testing.T) {
	for name, mutate := range map[string]func(*config.Config){
		"no chat namespace": func(c *config.Config) { c.Namespaces = []config.Namespace{{Name: "app"}} },
		"database is a directory": func(c *config.Config) {
			if err := os.Mkdir(filepath.Join(c.DataDir, sqlite.DefaultFileName), 0o700); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			cfg := server.DefaultConfig()
			cfg.DataDir = t.TempDir()
			cfg.TURNEnabled = false
			mutate(&cfg)
			if s, err := server.New(cfg, nil); err == nil {
				_ = s.Shutdown(context.Background())
				t.Fatal("server started")
			}
		})
	}
}

// TestTURNPortTakenFailsAtStart: a TURN port that cannot be bound stops the
// server at start with the reason (it used to log an ERROR and run on,
// /readyz 200, with calls that could not relay).
func TestTURNPortTakenFailsAtStart(t *testing.T) {
	taken, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := server.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.TURNListen = taken.LocalAddr().String()
	cfg.TURNRelayAddress = "127.0.0.1"
	s, err := server.New(cfg, nil)
	if err == nil {
		_ = s.Shutdown(context.Background())
		t.Fatalf("server started with its TURN port %s taken", cfg.TURNListen)
	}
	if !strings.Contains(err.Error(), "TURN") || !strings.Contains(err.Error(), "--turn=false") {
		t.Fatalf("error %q does not say what to do", err)
	}
}
