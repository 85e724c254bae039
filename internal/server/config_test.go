package server_test

import (
	"context"
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
