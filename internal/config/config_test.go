package config

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// load mirrors `sori serve`: defaults, file, environment, flags.
func load(t *testing.T, file string, args []string) Config {
	t.Helper()
	c := Default()
	if file != "" {
		if err := c.LoadFile(file); err != nil {
			t.Fatal(err)
		}
	}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := c.Bind(fs); err != nil {
		t.Fatal(err)
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sori.json")
	if err := os.WriteFile(file, []byte(`{"listen":"127.0.0.1:1","max_subscriptions":11,"queue_bytes":22,"ping_interval":"7s",
		"allowed_origins":["https://file.example"],"namespaces":[{"name":"x","history_size":3,"history_ttl":"1m"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SORI_MAX_SUBSCRIPTIONS", "33")
	t.Setenv("SORI_QUEUE_BYTES", "44")
	t.Setenv("SORI_COMMAND_RATE", "2.5")
	t.Setenv("SORI_ALLOW_ANONYMOUS", "true")
	t.Setenv("SORI_ALLOWED_ORIGINS", "https://a.example, https://b.example")
	t.Setenv("SORI_CONNECT_TIMEOUT", "3s")
	t.Setenv("SORI_LOGIN_RATE", "4.5")
	c := load(t, file, []string{"--queue-bytes", "55", "--ping-interval=9s", "--login-burst", "7", "--mesh-return", "1s"})
	tests := []struct {
		name      string
		got, want any
	}{
		{"file only", c.Listen, "127.0.0.1:1"},
		{"env over file", c.MaxSubscriptions, 33},
		{"flag over env", c.QueueBytes, 55},
		{"flag over file", c.PingInterval, Duration(9 * time.Second)},
		{"env float", c.CommandRate, 2.5},
		{"env bool", c.AllowAnonymous, true},
		{"env list", strings.Join(c.AllowedOrigins, "|"), "https://a.example|https://b.example"},
		{"env duration", c.ConnectTimeout, Duration(3 * time.Second)},
		{"env login rate", c.LoginRate, 4.5},
		{"flag login burst", c.LoginBurst, 7},
		{"flag mesh return", c.MeshReturn, Duration(time.Second)},
		{"default kept", c.MaxMessageSize, 64 << 10},
		{"file namespaces", c.Namespaces[0].HistoryTTL, Duration(time.Minute)},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestLoadFileErrors(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"unknown key":        `{"listen":"x","max_subscriptionz":1}`,
		"bad duration":       `{"ping_interval":"soon"}`,
		"number as duration": `{"ping_interval":5}`,
		"not JSON":           `listen = x`,
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		_ = os.WriteFile(p, []byte(body), 0o600)
		c := Default()
		if err := c.LoadFile(p); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
	c := Default()
	if err := c.LoadFile(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("missing file loaded")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"empty listen", func(c *Config) { c.Listen = "" }, "listen"},
		{"empty data dir", func(c *Config) { c.DataDir = "" }, "data dir"},
		{"log format", func(c *Config) { c.LogFormat = "xml" }, "log format"},
		{"log level", func(c *Config) { c.LogLevel = "loud" }, "log level"},
		{"short secret", func(c *Config) { c.TokenSecret = "short" }, "32 bytes"},
		{"zero connections", func(c *Config) { c.MaxConnections = 0 }, "max connections"},
		{"negative queue", func(c *Config) { c.QueueBytes = -1 }, "queue bytes"},
		{"zero rate", func(c *Config) { c.CommandRate = 0 }, "command rate"},
		{"zero login rate", func(c *Config) { c.LoginRate = 0 }, "login rate"},
		{"negative login burst", func(c *Config) { c.LoginBurst = -1 }, "login burst"},
		{"zero ping", func(c *Config) { c.PingInterval = 0 }, "ping interval"},
		{"zero handshake timeout", func(c *Config) { c.HandshakeTimeout = 0 }, "handshake timeout"},
		{"zero mesh return", func(c *Config) { c.MeshReturn = 0 }, "mesh return"},
		{"duplicate namespace", func(c *Config) { c.Namespaces = append(c.Namespaces, Namespace{Name: "chat"}, Namespace{Name: "chat"}) }, "twice"},
		{"cluster without secrets", func(c *Config) { c.Postgres = "host=db" }, "--token-secret"},
		{"nats without postgres", func(c *Config) {
			c.NATS = []string{"nats://x"}
			c.TokenSecret = strings.Repeat("s", 32)
			c.APIKeys = []string{"k"}
		}, "--postgres"},
		{"nats without secrets", func(c *Config) { c.NATS = []string{"nats://x"}; c.Postgres = "host=db" }, "--token-secret"},
		{"cluster without API keys", func(c *Config) { c.Postgres = "host=db"; c.TokenSecret = strings.Repeat("s", 32) }, "--api-keys"},
	}
	for _, tt := range tests {
		c := Default()
		tt.mutate(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error about %q", tt.name, err, tt.want)
		}
	}
}

// Cluster mode is valid once the shared secrets are given, from flags or
// the environment.
func TestClusterModeWithSecrets(t *testing.T) {
	t.Setenv("SORI_POSTGRES", "host=db dbname=sori")
	t.Setenv("SORI_TOKEN_SECRET", strings.Repeat("s", 32))
	c := load(t, "", []string{"--api-keys", "k1"})
	if !c.ClusterMode() || c.Postgres != "host=db dbname=sori" {
		t.Fatalf("postgres = %q, cluster mode %v", c.Postgres, c.ClusterMode())
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigFileFromArgs(t *testing.T) {
	t.Setenv("SORI_CONFIG", "")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--config", "a.json"}, "a.json"},
		{[]string{"--listen", "x", "-config=b.json"}, "b.json"},
		{[]string{"--config"}, ""},
		{nil, ""},
	} {
		if got := ConfigFileFromArgs(tt.args); got != tt.want {
			t.Errorf("%v: %q, want %q", tt.args, got, tt.want)
		}
	}
	t.Setenv("SORI_CONFIG", "env.json")
	if got := ConfigFileFromArgs(nil); got != "env.json" {
		t.Errorf("from env: %q", got)
	}
}

func TestSecrets(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	a, err := LoadOrCreateSecrets(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.TokenSecret) < 32 || a.APIKey == "" {
		t.Fatalf("weak secrets %+v", a)
	}
	st, err := os.Stat(filepath.Join(dir, SecretsFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secrets file: %v %v", err, st)
	}
	b, err := LoadOrCreateSecrets(dir)
	if err != nil || b != a {
		t.Fatalf("second load %+v %v, want the same secrets", b, err)
	}
}

// TestSecretsConcurrentFirstUse: `sori serve` and `sori token` started
// together on a fresh data dir must agree on the secrets; a process must
// never read the file another one is still writing.
func TestSecretsConcurrentFirstUse(t *testing.T) {
	for range 20 {
		dir := t.TempDir()
		const n = 8
		got := make([]Secrets, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { got[i], errs[i] = LoadOrCreateSecrets(dir) })
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("LoadOrCreateSecrets: %v", errs[i])
			}
			if got[i] != got[0] || got[i].TokenSecret == "" {
				t.Fatalf("secrets differ: %+v vs %+v", got[i], got[0])
			}
		}
	}
}

// TestBadEnvironmentIsAnError: a SORI_* variable that does not parse is
// reported, not silently replaced by the default.
func TestBadEnvironmentIsAnError(t *testing.T) {
	t.Setenv("SORI_MAX_CONNECTIONS", "10k")
	t.Setenv("SORI_PING_INTERVAL", "25")
	t.Setenv("SORI_COMPRESSION", "yes please")
	t.Setenv("SORI_COMMAND_RATE", "fast")
	c := Default()
	err := c.Bind(flag.NewFlagSet("test", flag.ContinueOnError))
	if err == nil {
		t.Fatal("Bind accepted unparsable SORI_* variables")
	}
	for _, v := range []string{"SORI_MAX_CONNECTIONS", "SORI_PING_INTERVAL", "SORI_COMPRESSION", "SORI_COMMAND_RATE"} {
		if !strings.Contains(err.Error(), v) {
			t.Errorf("error does not name %s: %v", v, err)
		}
	}
}

// A config file's namespaces replace the defaults whole: a namespace in the
// file must not inherit the fields it leaves out from the default namespace
// that happens to sit at the same index.
func TestLoadFileNamespacesReplaceDefaults(t *testing.T) {
	c := Default()
	c.Namespaces = []Namespace{
		{Name: "chat", HistorySize: 200, Subscribe: "token"},
		{Name: "user", HistorySize: 100, Publish: "server", Subscribe: "user"},
	}
	path := filepath.Join(t.TempDir(), "sori.json")
	if err := os.WriteFile(path, []byte(`{"namespaces":[{"name":"a"},{"name":"room","history_size":5}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	want := []Namespace{{Name: "a"}, {Name: "room", HistorySize: 5}}
	if !reflect.DeepEqual(c.Namespaces, want) {
		t.Fatalf("namespaces = %+v, want %+v", c.Namespaces, want)
	}

	// A file without "namespaces" keeps the defaults.
	c2 := Default()
	c2.Namespaces = []Namespace{{Name: "chat", HistorySize: 200}}
	if err := os.WriteFile(path, []byte(`{"listen":"127.0.0.1:0"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c2.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	if len(c2.Namespaces) != 1 || c2.Namespaces[0].Name != "chat" {
		t.Fatalf("namespaces = %+v, want the defaults kept", c2.Namespaces)
	}
}

// TestRegistrationAndPushHosts: the registration mode and push hosts come
// from the file, the environment and flags; an unknown mode is refused.
func TestRegistrationAndPushHosts(t *testing.T) {
	if c := Default(); c.Registration != "open" || len(c.PushHosts) != 0 {
		t.Fatalf("defaults: registration %q, push hosts %v", c.Registration, c.PushHosts)
	}
	file := filepath.Join(t.TempDir(), "sori.json")
	if err := os.WriteFile(file, []byte(`{"registration":"closed","push_hosts":["push.example"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if c := load(t, file, nil); c.Registration != "closed" || len(c.PushHosts) != 1 || c.PushHosts[0] != "push.example" {
		t.Fatalf("from the file: %q %v", c.Registration, c.PushHosts)
	}
	t.Setenv("SORI_REGISTRATION", "invite")
	if c := load(t, file, nil); c.Registration != "invite" {
		t.Fatalf("from the environment: %q", c.Registration)
	}
	c := load(t, file, []string{"--registration", "open", "--push-hosts", "a.example, *.b.example"})
	if c.Registration != "open" || len(c.PushHosts) != 2 || c.PushHosts[1] != "*.b.example" {
		t.Fatalf("from flags: %q %v", c.Registration, c.PushHosts)
	}
	c.Registration = "sideways"
	if err := c.Validate(); err == nil {
		t.Fatal("registration sideways validated")
	}
}
