package turn

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Defaults applied by Config to its zero values.
const (
	DefaultListenUDP     = ":3478"
	DefaultListenTLS     = ":5349"
	DefaultRealm         = "sori"
	DefaultCredentialTTL = 12 * time.Hour
	DefaultRelayPortMin  = 49152
	DefaultRelayPortMax  = 65535
	DefaultUserQuota     = 30
	// DefaultAllocateTimeout: a TURN-over-TCP/TLS connection has this long to allocate.
	DefaultAllocateTimeout = 5 * time.Second
	// DefaultMaxConnsPerIP: open TURN-over-TCP/TLS connections one address may hold; a
	// user's 30 allocations fit, with room for a few users behind one NAT.
	DefaultMaxConnsPerIP = 64
	minSecretLen         = 32
)

// Config configures a Server. The zero value of every field except Secret means "use the
// default"; Validate reports the first setting that cannot work.
type Config struct {
	// ListenUDP is the STUN/TURN UDP address. Default ":3478".
	ListenUDP string
	// ListenTCP is the TURN-over-TCP address. Default: the same address as ListenUDP.
	ListenTCP string
	// DisableTCP turns the TCP listener off.
	DisableTCP bool

	// TLS ("turns:") is off unless CertFile and KeyFile, TLSConfig or TLSListener is set.
	CertFile, KeyFile string
	// TLSConfig is used instead of CertFile/KeyFile when set.
	TLSConfig *tls.Config
	// ListenTLS is the TURN-over-TLS address. Default ":5349" when TLS is on.
	ListenTLS string

	// Realm is the STUN realm. Default "sori".
	Realm string
	// Secret is the shared secret credentials are signed with (at least 32 bytes). Required.
	Secret string
	// CredentialTTL is how long a minted credential may be used to create new allocations.
	// Allocations made before the expiry live on (see Server). Default 12h.
	CredentialTTL time.Duration

	// RelayPortMin and RelayPortMax bound the UDP/TCP ports relays are opened on (inclusive);
	// open this range in the firewall. Default 49152-65535.
	RelayPortMin, RelayPortMax uint16
	// RelayBindAddress is the local IPv4 address relay sockets are bound to. Default "0.0.0.0".
	RelayBindAddress string
	// ExternalIP is the public address of a server behind a 1:1 NAT: it is advertised to
	// clients as the relay address. Default: RelayBindAddress when it is a specific address,
	// else the first non-loopback IPv4 interface address, else 127.0.0.1.
	ExternalIP string
	// PublicHost is the host name (or address) put into stun:/turn:/turns: URLs; a turns: URL
	// needs the name the certificate is issued for. Default: the advertised relay IP.
	PublicHost string

	// UserQuota is the maximum number of simultaneous allocations per credential user.
	// 0 means DefaultUserQuota, a negative value means no limit.
	UserQuota int

	// AllocateTimeout closes a TCP or TLS connection that has no allocation this long
	// after it was accepted. 0 means DefaultAllocateTimeout, negative none.
	AllocateTimeout time.Duration
	// MaxConnsPerIP bounds the TCP and TLS connections one client address may hold; more
	// are closed at accept. 0 means DefaultMaxConnsPerIP, negative no limit.
	MaxConnsPerIP int

	// AllowPeers lists addresses or CIDR prefixes the relay may reach even though the default
	// policy refuses them (for tests, e.g. "127.0.0.1"). It overrides every refusal.
	AllowPeers []string

	// AllowSelfPorts are ports of the server's own addresses the relay may
	// reach besides its relay range: the SFU's media port, so that a client
	// that can only use relay candidates can still reach this node's SFU.
	// Nothing else the host listens on becomes reachable.
	AllowSelfPorts []uint16

	// Logger receives the server's and pion's logs. Default slog.Default().
	Logger *slog.Logger
	// Metrics receives counters. Default: none.
	Metrics Metrics

	// PacketConn, Listener and TLSListener, when set, are used instead of opening ListenUDP,
	// ListenTCP and ListenTLS. The Server takes ownership and closes them on Close. A
	// TLSListener must already speak TLS.
	PacketConn  net.PacketConn
	Listener    net.Listener
	TLSListener net.Listener

	// now is the clock used for credential expiry; tests replace it.
	now func() time.Time
}

func (c *Config) tlsEnabled() bool {
	return c.TLSListener != nil || c.TLSConfig != nil || c.CertFile != "" || c.KeyFile != ""
}

// withDefaults returns a copy of c with zero values replaced by defaults.
func (c Config) withDefaults() Config {
	if c.ListenUDP == "" {
		c.ListenUDP = DefaultListenUDP
	}
	if c.ListenTCP == "" {
		c.ListenTCP = c.ListenUDP
	}
	if c.ListenTLS == "" {
		c.ListenTLS = DefaultListenTLS
	}
	if c.Realm == "" {
		c.Realm = DefaultRealm
	}
	if c.CredentialTTL == 0 {
		c.CredentialTTL = DefaultCredentialTTL
	}
	if c.RelayPortMin == 0 && c.RelayPortMax == 0 {
		c.RelayPortMin, c.RelayPortMax = DefaultRelayPortMin, DefaultRelayPortMax
	}
	if c.RelayBindAddress == "" {
		c.RelayBindAddress = "0.0.0.0"
	}
	if c.UserQuota == 0 {
		c.UserQuota = DefaultUserQuota
	}
	if c.AllocateTimeout == 0 {
		c.AllocateTimeout = DefaultAllocateTimeout
	}
	if c.MaxConnsPerIP == 0 {
		c.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = noMetrics{}
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// Validate reports the first setting that cannot work, after defaults are applied.
func (c *Config) Validate() error {
	d := c.withDefaults()
	if len(d.Secret) < minSecretLen {
		return fmt.Errorf("turn: secret must be at least %d bytes", minSecretLen)
	}
	if d.CredentialTTL < 0 {
		return errors.New("turn: credential TTL is negative")
	}
	if d.RelayPortMin == 0 || d.RelayPortMax == 0 || d.RelayPortMin > d.RelayPortMax {
		return fmt.Errorf("turn: relay port range %d-%d is not a range", d.RelayPortMin, d.RelayPortMax)
	}
	if strings.ContainsAny(d.Realm, "\"\\") {
		return fmt.Errorf("turn: realm %q contains a quote or backslash", d.Realm)
	}
	bind, err := netip.ParseAddr(d.RelayBindAddress)
	if err != nil || !bind.Unmap().Is4() {
		return fmt.Errorf("turn: relay bind address %q: want an IPv4 address", d.RelayBindAddress)
	}
	if d.ExternalIP != "" {
		if _, err := netip.ParseAddr(d.ExternalIP); err != nil {
			return fmt.Errorf("turn: external IP %q: %w", d.ExternalIP, err)
		}
	}
	if d.PacketConn == nil {
		if err := checkListen("UDP", d.ListenUDP); err != nil {
			return err
		}
	}
	if !d.DisableTCP && d.Listener == nil {
		if err := checkListen("TCP", d.ListenTCP); err != nil {
			return err
		}
	}
	if d.tlsEnabled() && d.TLSListener == nil {
		if d.TLSConfig == nil && (d.CertFile == "" || d.KeyFile == "") {
			return errors.New("turn: TLS needs both a certificate file and a key file")
		}
		if err := checkListen("TLS", d.ListenTLS); err != nil {
			return err
		}
	}
	if _, err := parsePrefixes(d.AllowPeers); err != nil {
		return err
	}
	return nil
}

// checkListen accepts "host:port" with an empty host or an IPv4 host: relays are IPv4 only
// for now (an IPv6 listener would make pion create IPv6 allocations for IPv6 clients).
func checkListen(what, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("turn: %s listen address %q: %w", what, addr, err)
	}
	if host == "" {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.Unmap().Is4() {
		return fmt.Errorf("turn: %s listen address %q: want an IPv4 address", what, addr)
	}
	return nil
}

// parsePrefixes accepts "10.1.2.3", "::1" and "10.0.0.0/8"-style entries.
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("turn: allowed peer %q: %w", s, err)
			}
			out = append(out, normalizePrefix(p))
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("turn: allowed peer %q: %w", s, err)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// normalizePrefix turns "::ffff:10.0.0.0/104" into "10.0.0.0/8" so that it matches the
// unmapped peer addresses the policy compares against.
func normalizePrefix(p netip.Prefix) netip.Prefix {
	a := p.Addr()
	if a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked()
	}
	return p.Masked()
}
