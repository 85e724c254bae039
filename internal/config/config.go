// Package config loads Sori's configuration from, in rising precedence:
// built-in defaults, an optional JSON config file, SORI_* environment
// variables and command-line flags. It holds plain settings only and must
// never import another internal package: turning them into the parts they
// configure (hub namespaces, TURN policy) is the composition root's job.
package config

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is everything `sori serve` can be told.
type Config struct {
	Listen    string `json:"listen"`
	DataDir   string `json:"data_dir"`
	LogFormat string `json:"log_format"`
	LogLevel  string `json:"log_level"`

	AllowedOrigins []string `json:"allowed_origins"`
	Compression    bool     `json:"compression"`
	WSPoll         bool     `json:"ws_poll"`       // idle WebSocket connections wait in epoll, not on a goroutine (Linux)
	WSWritePool    bool     `json:"ws_write_pool"` // WebSocket writes from a few shared goroutines (Linux)
	AllowAnonymous bool     `json:"allow_anonymous"`

	TokenSecret     string   `json:"token_secret"`
	TokenPublicKeys []string `json:"token_public_keys"`
	TokenIssuer     string   `json:"token_issuer"`
	TokenAudience   string   `json:"token_audience"`
	APIKeys         []string `json:"api_keys"`

	MaxConnections      int      `json:"max_connections"`
	MaxConnectionsPerIP int      `json:"max_connections_per_ip"`
	MaxSubscriptions    int      `json:"max_subscriptions"`
	MaxMessageSize      int      `json:"max_message_size"`
	QueueBytes          int      `json:"queue_bytes"`
	CommandRate         float64  `json:"command_rate"`
	CommandBurst        int      `json:"command_burst"`
	LoginRate           float64  `json:"login_rate"`    // password attempts a minute per client address
	LoginBurst          int      `json:"login_burst"`   // password attempts at once per client address
	UploadQuota         int      `json:"upload_quota"`  // bytes of files one user may keep stored
	UploadRate          float64  `json:"upload_rate"`   // uploads a minute per user
	UploadBurst         int      `json:"upload_burst"`  // uploads at once per user
	DiskReserve         int      `json:"disk_reserve"`  // bytes the data dir's file system keeps free of uploads
	PushGrace           Duration `json:"push_grace"`    // how long a Web Push notice waits for the user to be connected
	VAPIDKey            string   `json:"vapid_key"`     // Web Push private key, base64url; generated in the data dir when empty (not in cluster mode)
	VAPIDSubject        string   `json:"vapid_subject"` // Web Push contact (mailto: or https:)
	PushHosts           []string `json:"push_hosts"`    // push service hosts subscriptions may name; empty = the major browsers' services
	Registration        string   `json:"registration"`  // self-service sign-up: open, invite or closed
	HandshakeTimeout    Duration `json:"handshake_timeout"`
	BodyTimeout         Duration `json:"body_timeout"`          // base time to read a request body
	AppendTimeout       Duration `json:"append_timeout"`        // how long a chat post waits for the store before error 122
	MaxBodyReadsPerIP   int      `json:"max_body_reads_per_ip"` // requests reading a body at once per client address
	ConnectTimeout      Duration `json:"connect_timeout"`
	PingInterval        Duration `json:"ping_interval"`
	WriteTimeout        Duration `json:"write_timeout"`
	ShutdownTimeout     Duration `json:"shutdown_timeout"`
	ShutdownDelay       Duration `json:"shutdown_delay"`

	// Namespaces replace the hub's default namespaces when not nil
	// (server.DefaultConfig writes the defaults out).
	Namespaces []Namespace `json:"namespaces"`

	// Calls (docs/calls.md): the mesh limit and the embedded STUN/TURN server.
	MeshLimit         int      `json:"mesh_limit"`
	TURNEnabled       bool     `json:"turn_enabled"`
	TURNListen        string   `json:"turn_listen"`
	TURNTLSListen     string   `json:"turn_tls_listen"`
	TURNCertFile      string   `json:"turn_cert_file"`
	TURNKeyFile       string   `json:"turn_key_file"`
	TURNSecret        string   `json:"turn_secret"`
	TURNRealm         string   `json:"turn_realm"`
	TURNExternalIP    string   `json:"turn_external_ip"`
	TURNPublicHost    string   `json:"turn_public_host"`
	TURNRelayAddress  string   `json:"turn_relay_address"`
	TURNRelayPortMin  int      `json:"turn_relay_port_min"`
	TURNRelayPortMax  int      `json:"turn_relay_port_max"`
	TURNAllowPeers    []string `json:"turn_allow_peers"`
	TURNUserQuota     int      `json:"turn_user_quota"`
	TURNCredentialTTL Duration `json:"turn_credential_ttl"`
	// SFU (docs/calls.md): off unless SFUListen is set.
	SFUListen     string `json:"sfu_listen"`
	SFUExternalIP string `json:"sfu_external_ip"`
	SFUTCP        bool   `json:"sfu_tcp"`
	SFULimit      int    `json:"sfu_limit"`
	// MeshReturn is how long a call on the SFU must stay below the mesh
	// limit before it returns to mesh (the hysteresis of the switch).
	MeshReturn Duration `json:"mesh_return"`
	// BroadcastLimit: participants of a broadcast call (docs/calls.md).
	BroadcastLimit int `json:"broadcast_limit"`

	// Postgres is the DSN of the shared PostgreSQL chat store; set, it
	// replaces the SQLite file in the data dir and puts the server in
	// cluster mode (docs/operations.md "Cluster mode").
	Postgres string `json:"postgres"`
	// NATS are the URLs of the NATS servers that carry committed chat
	// publications between nodes; NodeID names this node on the bus
	// (empty = generated at startup).
	NATS   []string `json:"nats"`
	NodeID string   `json:"node_id"`
	// Advertise is this node's HTTP address as the other nodes reach it
	// (host:port); in cluster mode any node passes an HTTP fallback
	// session's requests to the node holding it there. Empty: the listen
	// address when it names a host.
	Advertise string `json:"advertise"`
}

// ClusterMode reports whether this node shares state with others, which
// requires every secret to be configured rather than generated per data dir.
func (c *Config) ClusterMode() bool { return c.Postgres != "" || len(c.NATS) > 0 }

// ErrClusterSecrets is Validate's error when cluster mode lacks a secret.
var ErrClusterSecrets = errors.New("config: cluster mode (--postgres, --nats) needs the token secret (--token-secret) and the API keys (--api-keys) configured, the same on every node: generating them in each node's data dir would make tokens and API calls fail on the other nodes")

// Namespace is a channel namespace's options as written in a config file,
// with durations as strings ("1h30m"). The server turns it into a
// hub.Namespace, which documents and validates each option.
type Namespace struct {
	Name           string   `json:"name"`
	HistorySize    int      `json:"history_size"`
	HistoryTTL     Duration `json:"history_ttl"`
	Presence       bool     `json:"presence"`
	JoinLeave      bool     `json:"join_leave"`
	Publish        string   `json:"publish"`
	Subscribe      string   `json:"subscribe"`
	Anonymous      bool     `json:"anonymous"`
	Conflate       bool     `json:"conflate"`
	MaxMessageSize int      `json:"max_message_size"`
}

// Duration is a time.Duration that reads and writes as "1m30s" in JSON.
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"30s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Default returns the configuration `sori serve` runs with when told nothing:
// loopback only, data in ./sori-data. Its Namespaces are nil, which means
// the hub's defaults; server.DefaultConfig fills them in.
func Default() Config {
	c := Config{
		Listen:              "127.0.0.1:7700",
		DataDir:             "sori-data",
		LogFormat:           "text",
		LogLevel:            "info",
		Compression:         true,
		WSPoll:              true,
		WSWritePool:         true,
		MaxConnections:      100000,
		MaxConnectionsPerIP: 1000,
		MaxSubscriptions:    256,
		MaxMessageSize:      64 << 10,
		QueueBytes:          1 << 20,
		CommandRate:         100,
		CommandBurst:        200,
		LoginRate:           10,
		LoginBurst:          20,
		UploadQuota:         256 << 20,
		UploadRate:          30,
		UploadBurst:         10,
		DiskReserve:         1 << 30,
		PushGrace:           Duration(10 * time.Second),
		Registration:        "open",
		HandshakeTimeout:    Duration(10 * time.Second),
		BodyTimeout:         Duration(10 * time.Second),
		AppendTimeout:       Duration(10 * time.Second),
		MaxBodyReadsPerIP:   64,
		ConnectTimeout:      Duration(10 * time.Second),
		PingInterval:        Duration(25 * time.Second),
		WriteTimeout:        Duration(10 * time.Second),
		ShutdownTimeout:     Duration(10 * time.Second),
		MeshLimit:           4,
		TURNEnabled:         true,
		TURNRealm:           "sori",
		TURNRelayPortMin:    49152,
		TURNRelayPortMax:    65535,
		TURNUserQuota:       30,
		TURNCredentialTTL:   Duration(12 * time.Hour),
		SFULimit:            50,
		MeshReturn:          Duration(30 * time.Second),
		BroadcastLimit:      500,
	}
	return c
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	if c.Listen == "" {
		return errors.New("config: listen address is empty")
	}
	if c.DataDir == "" {
		return errors.New("config: data dir is empty")
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("config: log format %q: want text or json", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config: log level %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.TokenSecret != "" && len(c.TokenSecret) < 32 {
		return errors.New("config: token secret must be at least 32 bytes")
	}
	if c.ClusterMode() && (c.TokenSecret == "" || len(c.APIKeys) == 0) {
		return ErrClusterSecrets
	}
	if len(c.NATS) > 0 && c.Postgres == "" {
		return errors.New("config: --nats needs --postgres: the nodes must share the chat log whose publications NATS announces")
	}
	for name, v := range map[string]int{"max connections": c.MaxConnections, "max connections per IP": c.MaxConnectionsPerIP,
		"max subscriptions": c.MaxSubscriptions, "max message size": c.MaxMessageSize, "queue bytes": c.QueueBytes, "command burst": c.CommandBurst, "login burst": c.LoginBurst,
		"max body reads per IP": c.MaxBodyReadsPerIP} {
		if v <= 0 {
			return fmt.Errorf("config: %s must be positive", name)
		}
	}
	if c.CommandRate <= 0 {
		return errors.New("config: command rate must be positive")
	}
	switch c.Registration {
	case "open", "invite", "closed":
	default:
		return fmt.Errorf("config: registration %q: want open, invite or closed", c.Registration)
	}
	if c.LoginRate <= 0 {
		return errors.New("config: login rate must be positive")
	}
	if c.UploadRate <= 0 {
		return errors.New("config: upload rate must be positive")
	}
	if c.DiskReserve < 0 {
		return errors.New("config: disk reserve must not be negative")
	}
	for name, d := range map[string]Duration{"handshake timeout": c.HandshakeTimeout, "body timeout": c.BodyTimeout, "connect timeout": c.ConnectTimeout,
		"ping interval": c.PingInterval, "write timeout": c.WriteTimeout, "shutdown timeout": c.ShutdownTimeout,
		"append timeout": c.AppendTimeout} {
		if d <= 0 {
			return fmt.Errorf("config: %s must be positive", name)
		}
	}
	if c.MeshLimit < 2 {
		return errors.New("config: mesh limit must be at least 2")
	}
	if c.MeshReturn <= 0 {
		return errors.New("config: mesh return must be positive")
	}
	if c.SFUListen != "" && c.SFULimit <= c.MeshLimit {
		return errors.New("config: SFU limit must be above the mesh limit")
	}
	if c.TURNEnabled {
		if c.TURNSecret != "" && len(c.TURNSecret) < 32 {
			return errors.New("config: TURN secret must be at least 32 bytes")
		}
		if c.TURNRelayPortMin < 1 || c.TURNRelayPortMax > 65535 || c.TURNRelayPortMin > c.TURNRelayPortMax {
			return fmt.Errorf("config: TURN relay ports %d-%d are not a range of ports", c.TURNRelayPortMin, c.TURNRelayPortMax)
		}
		if c.TURNCredentialTTL <= 0 {
			return errors.New("config: TURN credential TTL must be positive")
		}
	}
	if c.ShutdownDelay < 0 {
		return errors.New("config: shutdown delay must not be negative")
	}
	seen := map[string]bool{}
	for _, n := range c.Namespaces {
		if seen[n.Name] {
			return fmt.Errorf("config: namespace %q is configured twice", n.Name)
		}
		seen[n.Name] = true
	}
	return nil
}

// LoadFile merges a JSON config file into c. Unknown keys are an error, so
// that a typo does not silently leave a default in place.
func (c *Config) LoadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	// A file's "namespaces" replaces the list; it does not merge into it by
	// index. encoding/json decodes array elements into the existing backing
	// array, so without this a namespace written in the file would keep every
	// field it leaves out from the default at the same position (a fifth
	// namespace inherited "subscribe":"user" from the default "user").
	defaults := c.Namespaces
	c.Namespaces = nil
	if err := dec.Decode(c); err != nil {
		c.Namespaces = defaults
		return fmt.Errorf("config: %s: %w", path, err)
	}
	if c.Namespaces == nil {
		c.Namespaces = defaults
	}
	return nil
}

// Bind registers c's settings as flags on fs, each also read from the
// environment variable SORI_<FLAG NAME> (dashes as underscores) when set.
// Flags parsed later override the environment. A variable that does not
// parse is an error (naming every such variable), as an unknown key in the
// config file is: a typo must not silently leave a default in place.
func (c *Config) Bind(fs *flag.FlagSet) error {
	var errs []error
	env := func(name string, set func(string) error) {
		if v, ok := os.LookupEnv(envName(name)); ok {
			if err := set(v); err != nil {
				errs = append(errs, fmt.Errorf("config: $%s: %w", envName(name), err))
			}
		}
	}
	str := func(p *string, name, usage string) {
		env(name, func(v string) error { *p = v; return nil })
		fs.StringVar(p, name, *p, usage+envHint(name))
	}
	integer := func(p *int, name, usage string) {
		env(name, func(v string) error { return parseInto(p, v, strconv.Atoi) })
		fs.IntVar(p, name, *p, usage+envHint(name))
	}
	float := func(p *float64, name, usage string) {
		env(name, func(v string) error {
			return parseInto(p, v, func(v string) (float64, error) { return strconv.ParseFloat(v, 64) })
		})
		fs.Float64Var(p, name, *p, usage+envHint(name))
	}
	boolean := func(p *bool, name, usage string) {
		env(name, func(v string) error { return parseInto(p, v, strconv.ParseBool) })
		fs.BoolVar(p, name, *p, usage+envHint(name))
	}
	dur := func(p *Duration, name, usage string) {
		env(name, (*durationFlag)(p).Set)
		fs.Var((*durationFlag)(p), name, usage+envHint(name))
	}
	list := func(p *[]string, name, usage string) {
		env(name, (*listFlag)(p).Set)
		fs.Var((*listFlag)(p), name, usage+" (comma-separated)"+envHint(name))
	}
	str(&c.Listen, "listen", "address to listen on")
	str(&c.DataDir, "data", "data directory (SQLite store, uploads, generated secrets)")
	str(&c.LogFormat, "log-format", "log format: text or json")
	str(&c.LogLevel, "log-level", "log level: debug, info, warn or error")
	list(&c.AllowedOrigins, "allowed-origins", "browser origins allowed besides the server's own; * for any")
	boolean(&c.Compression, "compression", "accept WebSocket permessage-deflate")
	boolean(&c.WSPoll, "ws-poll", "park idle WebSocket connections in epoll instead of a goroutine each (Linux; ignored elsewhere)")
	boolean(&c.WSWritePool, "ws-write-pool", "write to WebSocket connections from a pool of GOMAXPROCS goroutines with non-blocking writes instead of a goroutine per connection with frames queued (Linux; ignored elsewhere)")
	boolean(&c.AllowAnonymous, "allow-anonymous", "allow connections without a token")
	str(&c.TokenSecret, "token-secret", "HMAC secret for connection tokens (default: generated in the data dir)")
	list(&c.TokenPublicKeys, "token-public-keys", "PEM files with RSA/ECDSA public keys for connection tokens")
	str(&c.TokenIssuer, "token-issuer", "required token issuer (iss)")
	str(&c.TokenAudience, "token-audience", "required token audience (aud)")
	list(&c.APIKeys, "api-keys", "server API keys (default: one generated in the data dir)")
	integer(&c.MaxConnections, "max-connections", "most open connections")
	integer(&c.MaxConnectionsPerIP, "max-connections-per-ip", "most open connections from one IP")
	integer(&c.MaxSubscriptions, "max-subscriptions", "most subscriptions per connection")
	integer(&c.MaxMessageSize, "max-message-size", "most bytes in one inbound message")
	integer(&c.QueueBytes, "queue-bytes", "outbound queue per connection, in bytes, before it counts as a slow consumer")
	float(&c.CommandRate, "command-rate", "commands per second per connection")
	integer(&c.CommandBurst, "command-burst", "command burst per connection")
	float(&c.LoginRate, "login-rate", "password attempts (sign-up, login, password change) a minute per client address; each username gets half")
	integer(&c.LoginBurst, "login-burst", "password attempts at once per client address; each username gets a quarter")
	integer(&c.UploadQuota, "upload-quota", "bytes of files one user may keep stored (error 120 beyond)")
	float(&c.UploadRate, "upload-rate", "file uploads a minute per user")
	integer(&c.UploadBurst, "upload-burst", "file uploads at once per user")
	integer(&c.DiskReserve, "disk-reserve", "bytes the data dir's file system keeps free: uploads stop (error 121) before chat writes run out of space; 0 = off")
	dur(&c.PushGrace, "push-grace", "how long a Web Push notice waits: it is sent only if none of the user's devices is connected then")
	str(&c.VAPIDKey, "vapid-key", "Web Push (VAPID) private key, base64url (default: generated in the data dir; required for push in cluster mode)")
	str(&c.VAPIDSubject, "vapid-subject", "Web Push contact for push services, mailto: or https: (default mailto:admin@localhost)")
	list(&c.PushHosts, "push-hosts", "push service hosts a Web Push subscription may name; *.example.com matches its subdomains (default: the push services of Chrome, Firefox, Edge and Safari)")
	str(&c.Registration, "registration", "self-service sign-up: open (anyone), invite (with an invite from a server admin) or closed (`sori user add` only); a server admin's choice (PUT /api/v1/admin/registration) overrides it")
	dur(&c.HandshakeTimeout, "handshake-timeout", "time to read an HTTP request's headers (slowloris guard)")
	dur(&c.BodyTimeout, "body-timeout", "time to read an HTTP request's body, plus 1s per 16 KiB of it; a slower body is cut off")
	dur(&c.AppendTimeout, "append-timeout", "how long a chat post, edit, reaction or pin waits for the store (a lock held elsewhere, a stalled disk or database) before it is answered 503, error 122: try again")
	integer(&c.MaxBodyReadsPerIP, "max-body-reads-per-ip", "most HTTP requests one client address may have reading a body at once; more get 429")
	dur(&c.ConnectTimeout, "connect-timeout", "time from opening a connection to its connect command")
	dur(&c.PingInterval, "ping-interval", "interval of server heartbeats; a silent peer is closed after two")
	dur(&c.WriteTimeout, "write-timeout", "how long one write to a client may block")
	dur(&c.ShutdownTimeout, "shutdown-timeout", "how long a graceful shutdown may take")
	dur(&c.ShutdownDelay, "shutdown-delay", "on shutdown, how long /readyz answers 503 before connections are closed, so a load balancer stops sending new ones (0 = none)")
	integer(&c.MeshLimit, "mesh-limit", "most participants of a peer-to-peer call")
	boolean(&c.TURNEnabled, "turn", "run the embedded STUN/TURN server")
	str(&c.TURNListen, "turn-listen", "STUN/TURN address, UDP and TCP (default: the --listen host, port 3478)")
	str(&c.TURNTLSListen, "turn-tls-listen", "TURN over TLS address, used with --turn-cert and --turn-key (default: the --listen host, port 5349)")
	str(&c.TURNCertFile, "turn-cert", "PEM certificate for TURN over TLS (off without one)")
	str(&c.TURNKeyFile, "turn-key", "PEM private key for TURN over TLS")
	str(&c.TURNSecret, "turn-secret", "secret TURN credentials are signed with (default: derived from the token secret)")
	str(&c.TURNRealm, "turn-realm", "STUN/TURN realm")
	str(&c.TURNExternalIP, "turn-external-ip", "public IP advertised for relays, for servers behind 1:1 NAT")
	str(&c.TURNPublicHost, "turn-public-host", "host name put into stun:/turn: URLs (default: the relay IP)")
	str(&c.TURNRelayAddress, "turn-relay-address", "local IPv4 address relay sockets bind to (default: the --listen host when it is an IPv4 address, else 0.0.0.0)")
	integer(&c.TURNRelayPortMin, "turn-relay-port-min", "lowest relay port")
	integer(&c.TURNRelayPortMax, "turn-relay-port-max", "highest relay port")
	list(&c.TURNAllowPeers, "turn-allow-peers", "addresses or CIDR prefixes the relay may reach despite the private/loopback refusal (tests, private networks)")
	str(&c.SFUListen, "sfu-listen", "UDP address of the SFU, one port for all calls (off when empty: calls stay peer-to-peer)")
	str(&c.SFUExternalIP, "sfu-external-ip", "public IP announced for the SFU port, for servers behind 1:1 NAT")
	boolean(&c.SFUTCP, "sfu-tcp", "also accept ICE over TCP on the SFU's port number, for clients whose network blocks UDP")
	integer(&c.SFULimit, "sfu-limit", "most participants of a call on the SFU")
	dur(&c.MeshReturn, "mesh-return", "how long a call on the SFU must stay below the mesh limit before it returns to peer-to-peer")
	integer(&c.BroadcastLimit, "broadcast-limit", "most participants (hosts and viewers) of a broadcast call on the SFU")
	integer(&c.TURNUserQuota, "turn-user-quota", "most simultaneous relay allocations per user; negative for no limit")
	dur(&c.TURNCredentialTTL, "turn-credential-ttl", "how long minted TURN credentials may open new relays")
	str(&c.Postgres, "postgres", "PostgreSQL DSN of the chat store shared by a cluster's nodes (default: SQLite in the data dir)")
	list(&c.NATS, "nats", "NATS server URLs that carry chat publications between a cluster's nodes (needs --postgres)")
	str(&c.NodeID, "node-id", "this node's name on the NATS bus (default: generated at startup)")
	str(&c.Advertise, "advertise", "this node's HTTP address (host:port) as the other cluster nodes reach it, for passing on HTTP fallback requests (default: the --listen address when it names a host)")
	return errors.Join(errs...)
}

// parseInto sets *p to parse(v) when v parses.
func parseInto[T any](p *T, v string, parse func(string) (T, error)) error {
	x, err := parse(v)
	if err != nil {
		return err
	}
	*p = x
	return nil
}

// ConfigFileFromArgs finds --config FILE (or SORI_CONFIG) before flags are
// bound, since the file's values become the flags' defaults.
func ConfigFileFromArgs(args []string) string {
	for i, a := range args {
		for _, p := range []string{"--config=", "-config="} {
			if strings.HasPrefix(a, p) {
				return a[len(p):]
			}
		}
		if (a == "--config" || a == "-config") && i+1 < len(args) {
			return args[i+1]
		}
	}
	return os.Getenv("SORI_CONFIG")
}

func envName(flagName string) string {
	return "SORI_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func envHint(name string) string { return " [$" + envName(name) + "]" }

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

type durationFlag Duration

func (d *durationFlag) String() string { return time.Duration(*d).String() }
func (d *durationFlag) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = durationFlag(v)
	return nil
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = splitList(s); return nil }

// Secrets are generated once per data dir so that `sori serve` works with no
// configuration and `sori token` can mint tokens the server accepts.
type Secrets struct {
	TokenSecret string `json:"token_secret"`
	APIKey      string `json:"api_key"`
}

// SecretsFile is where LoadOrCreateSecrets keeps them, inside the data dir.
const SecretsFile = "secrets.json"

// LoadOrCreateSecrets reads the data dir's secrets, creating them (mode 0600)
// on first use. The file appears whole or not at all: it is written under a
// temporary name and then hard-linked into place, which fails rather than
// replaces when another process (`sori token` next to `sori serve`) created
// it first, so every process ends up with the same secrets.
func LoadOrCreateSecrets(dataDir string) (Secrets, error) {
	path := filepath.Join(dataDir, SecretsFile)
	s, err := readSecrets(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return s, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return Secrets{}, fmt.Errorf("config: create data dir: %w", err)
	}
	s = Secrets{TokenSecret: randomHex(32), APIKey: randomHex(24)}
	b, _ := json.MarshalIndent(s, "", "  ")
	f, err := os.CreateTemp(dataDir, SecretsFile+".*.tmp")
	if err != nil {
		return Secrets{}, fmt.Errorf("config: create secrets: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Secrets{}, fmt.Errorf("config: write secrets: %w", err)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) { // another process won the race
			return readSecrets(path)
		}
		return Secrets{}, fmt.Errorf("config: create secrets: %w", err)
	}
	return s, nil
}

func readSecrets(path string) (Secrets, error) {
	var s Secrets
	b, err := os.ReadFile(path)
	if err != nil {
		return Secrets{}, fmt.Errorf("config: read secrets: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return Secrets{}, fmt.Errorf("config: %s: %w", path, err)
	}
	return s, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = io.ReadFull(rand.Reader, b)
	return hex.EncodeToString(b)
}
