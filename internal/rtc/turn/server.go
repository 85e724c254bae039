package turn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

// Errors returned by the Server.
var (
	ErrStarted          = errors.New("turn: server already started")
	ErrClosed           = errors.New("turn: server closed")
	errPortOutsideRange = errors.New("turn: requested relay port is outside the relay port range")
	errPeerRefused      = errors.New("turn: peer refused by policy")
)

// Server is the embedded STUN/TURN server. Create it with New, open its sockets with Start and
// stop it with Close. Mint and ICEServers may be called from any goroutine at any time; the
// URLs ICEServers returns are complete only after Start.
//
// Credential expiry is checked only when an allocation is created. pion runs the
// authentication handler for every authenticated request (Allocate, Refresh, CreatePermission,
// ChannelBind, Connect, ConnectionBind) and tells it which method it serves; for every method
// but Allocate the handler ignores the expiry and only derives the key, so pion still verifies
// MESSAGE-INTEGRITY (in constant time, with hmac.Equal) and a call that outlives the
// credential's TTL keeps refreshing its allocation and permissions. The allocation stays bound
// to the exact username that created it: pion only refreshes an allocation for the same
// 5-tuple and the same user ID, and the user ID here is the whole "expiry:user" username.
type Server struct {
	cfg    Config // with defaults applied
	log    *slog.Logger
	quota  *quota
	policy *peerPolicy

	mu         sync.Mutex
	started    bool
	closed     bool
	pion       *turn.Server
	closers    []func() error // sockets opened before pion owned them
	tracked    []*trackingListener
	publicHost string
	udpAddr    net.Addr
	tcpAddr    net.Addr
	tlsAddr    net.Addr
	udpPort    int
	tcpPort    int
	tlsPort    int
}

// New validates cfg and returns a Server that is not yet listening.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	allow, err := parsePrefixes(cfg.AllowPeers)
	if err != nil {
		return nil, err
	}
	return &Server{
		cfg:   cfg,
		log:   cfg.Logger.With("component", "turn"),
		quota: newQuota(cfg.UserQuota),
		policy: &peerPolicy{
			allow:        allow,
			relayPortMin: cfg.RelayPortMin,
			relayPortMax: cfg.RelayPortMax,
			selfPorts:    append([]uint16(nil), cfg.AllowSelfPorts...),
			metrics:      cfg.Metrics,
		},
	}, nil
}

// Start opens the listeners and starts serving. ctx bounds only the opening of the sockets;
// the server runs until Close.
func (s *Server) Start(ctx context.Context) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case s.started:
		return ErrStarted
	}
	s.started = true
	defer func() {
		if err != nil {
			s.closeOwnedLocked()
		}
	}()

	cfg := &s.cfg
	var lc net.ListenConfig

	udp := cfg.PacketConn
	if udp == nil {
		if udp, err = lc.ListenPacket(ctx, "udp4", cfg.ListenUDP); err != nil {
			return fmt.Errorf("turn: failed to listen on UDP %s: %w", cfg.ListenUDP, err)
		}
	}
	s.closers = append(s.closers, udp.Close)

	var tcp net.Listener
	if !cfg.DisableTCP {
		if tcp = cfg.Listener; tcp == nil {
			if tcp, err = lc.Listen(ctx, "tcp4", cfg.ListenTCP); err != nil {
				return fmt.Errorf("turn: failed to listen on TCP %s: %w", cfg.ListenTCP, err)
			}
		}
		s.closers = append(s.closers, tcp.Close)
		tcp = s.track(tcp)
	}

	var tlsLn net.Listener
	if cfg.tlsEnabled() {
		if tlsLn, err = s.listenTLS(ctx, &lc); err != nil {
			return err
		}
		s.closers = append(s.closers, tlsLn.Close)
	}

	relayIP, err := s.relayIP()
	if err != nil {
		return err
	}
	s.policy.self = ownAddresses(relayIP, udp, tcp, tlsLn)
	s.publicHost = cfg.PublicHost
	if s.publicHost == "" {
		s.publicHost = relayIP.String()
	}

	pcfg := turn.ServerConfig{
		Realm:         cfg.Realm,
		LoggerFactory: slogFactory{log: s.log},
		AuthHandler:   s.authenticate,
		QuotaHandler:  s.reserveQuota,
		EventHandler: turn.EventHandler{
			OnAuth:              s.onAuth,
			OnAllocationCreated: s.onAllocationCreated,
			OnAllocationDeleted: s.onAllocationDeleted,
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            udp,
			RelayAddressGenerator: s.newRelayGenerator(relayIP),
			PermissionHandler:     s.policy.permit,
		}},
	}
	for _, ln := range []net.Listener{tcp, tlsLn} {
		if ln == nil {
			continue
		}
		pcfg.ListenerConfigs = append(pcfg.ListenerConfigs, turn.ListenerConfig{
			Listener:              ln,
			RelayAddressGenerator: s.newRelayGenerator(relayIP),
			PermissionHandler:     s.policy.permit,
		})
	}

	srv, err := turn.NewServer(pcfg)
	if err != nil {
		return fmt.Errorf("turn: failed to start: %w", err)
	}
	s.pion = srv
	s.closers = nil // pion closes the sockets from now on

	s.udpAddr, s.udpPort = udp.LocalAddr(), portOf(udp.LocalAddr())
	if tcp != nil {
		s.tcpAddr, s.tcpPort = tcp.Addr(), portOf(tcp.Addr())
	}
	if tlsLn != nil {
		s.tlsAddr, s.tlsPort = tlsLn.Addr(), portOf(tlsLn.Addr())
	}
	addrOrOff := func(a net.Addr) string {
		if a == nil {
			return "off"
		}
		return a.String()
	}
	s.log.Info("turn listening", "udp", s.udpAddr.String(), "tcp", addrOrOff(s.tcpAddr), "tls", addrOrOff(s.tlsAddr),
		"relay_ip", relayIP, "relay_ports", fmt.Sprintf("%d-%d", cfg.RelayPortMin, cfg.RelayPortMax))
	return nil
}

func (s *Server) listenTLS(ctx context.Context, lc *net.ListenConfig) (net.Listener, error) {
	cfg := &s.cfg
	if cfg.TLSListener != nil {
		return s.track(cfg.TLSListener), nil
	}
	tcfg := cfg.TLSConfig
	if tcfg == nil {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("turn: failed to load TLS certificate: %w", err)
		}
		tcfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	raw, err := lc.Listen(ctx, "tcp4", cfg.ListenTLS)
	if err != nil {
		return nil, fmt.Errorf("turn: failed to listen on TLS %s: %w", cfg.ListenTLS, err)
	}
	// Tracking the raw TCP listener keeps the *tls.Conn type pion looks for: it then completes
	// the handshake with a deadline before reading.
	return tls.NewListener(s.track(raw), tcfg), nil
}

// track wraps ln so that Close can end the connections it accepted.
func (s *Server) track(ln net.Listener) net.Listener {
	tl := newTrackingListener(ln, s.cfg.MaxConnsPerIP, s.cfg.AllocateTimeout)
	s.tracked = append(s.tracked, tl)
	return tl
}

// Close stops the server: it closes the listeners, every TURN-over-TCP/TLS connection and,
// through pion, every allocation. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	if s.pion != nil {
		if err := s.pion.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	// pion closes the listeners but not the connections it accepted; their read loops would
	// run until the clients hang up.
	for _, tl := range s.tracked {
		tl.closeConns()
	}
	s.closeOwnedLocked()
	return errors.Join(errs...)
}

func (s *Server) closeOwnedLocked() {
	for _, c := range s.closers {
		_ = c()
	}
	s.closers = nil
}

// UDPAddr, TCPAddr and TLSAddr return the listening addresses, nil when off or not started.
func (s *Server) UDPAddr() net.Addr { s.mu.Lock(); defer s.mu.Unlock(); return s.udpAddr }

// TCPAddr returns the TURN-over-TCP listening address (nil when off or not started).
func (s *Server) TCPAddr() net.Addr { s.mu.Lock(); defer s.mu.Unlock(); return s.tcpAddr }

// TLSAddr returns the TURN-over-TLS listening address (nil when off or not started).
func (s *Server) TLSAddr() net.Addr { s.mu.Lock(); defer s.mu.Unlock(); return s.tlsAddr }

// AllocationCount returns the number of live allocations.
func (s *Server) AllocationCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pion == nil {
		return 0
	}
	return s.pion.AllocationCount()
}

// authenticate is pion's AuthHandler. It returns the long-term key for the username
// (RFC 8489 section 9.2.2) and pion checks MESSAGE-INTEGRITY against it; the password is
// never compared here. Expiry is enforced for Allocate only (see Server).
func (s *Server) authenticate(ra *turn.RequestAttributes) (userID string, key []byte, ok bool) {
	expires, _, ok := parseUsername(ra.Username)
	if !ok {
		s.cfg.Metrics.AuthRefused("malformed")
		return "", nil, false
	}
	if ra.Realm != s.cfg.Realm {
		s.cfg.Metrics.AuthRefused("realm")
		return "", nil, false
	}
	if ra.Method == stun.MethodAllocate && !s.cfg.now().Before(expires) {
		s.cfg.Metrics.AuthRefused("expired")
		return "", nil, false
	}
	password := sign(s.cfg.Secret, ra.Username)
	return ra.Username, turn.GenerateAuthKey(ra.Username, ra.Realm, password), true
}

func (s *Server) onAuth(_, _ net.Addr, _, _, _ string, _ string, verdict bool) {
	if !verdict {
		s.cfg.Metrics.AuthRefused("integrity")
	}
}

// reserveQuota is pion's QuotaHandler, called for an authenticated Allocate just before the
// relay socket is opened.
func (s *Server) reserveQuota(userID, _ string, _ net.Addr) bool {
	if s.quota.reserve(userOf(userID), time.Now()) {
		return true
	}
	s.cfg.Metrics.QuotaRefused()
	return false
}

func (s *Server) onAllocationCreated(src, _ net.Addr, _, userID, _ string, _ net.Addr, _ int) {
	// s.tracked is complete before pion starts serving and never changes after, so no
	// lock: taking s.mu here could deadlock with Close, which holds it while pion stops.
	for _, tl := range s.tracked {
		tl.allocated(src)
	}
	s.quota.created(userOf(userID))
	s.cfg.Metrics.AllocationCreated()
}

func (s *Server) onAllocationDeleted(_, _ net.Addr, _, userID, _ string) {
	s.quota.deleted(userOf(userID))
	s.cfg.Metrics.AllocationDeleted()
}

// relayIP is the address advertised in XOR-RELAYED-ADDRESS.
func (s *Server) relayIP() (net.IP, error) {
	if s.cfg.ExternalIP != "" {
		return net.ParseIP(s.cfg.ExternalIP), nil
	}
	if bind := net.ParseIP(s.cfg.RelayBindAddress); bind != nil && !bind.IsUnspecified() {
		return bind, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("turn: failed to list interface addresses: %w", err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() {
			return ipn.IP.To4(), nil
		}
	}
	return net.IPv4(127, 0, 0, 1).To4(), nil
}

// ownAddresses collects the addresses the host answers on: every interface address, the
// advertised relay address and the listeners' specific addresses. They are read once at
// Start; an address the host gains later is covered by the private/loopback classes only.
func ownAddresses(relayIP net.IP, udp net.PacketConn, lns ...net.Listener) map[netip.Addr]struct{} {
	self := map[netip.Addr]struct{}{}
	add := func(ip net.IP) {
		if a, ok := netip.AddrFromSlice(ip); ok && !a.IsUnspecified() {
			self[a.Unmap().WithZone("")] = struct{}{}
		}
	}
	add(relayIP)
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				add(ipn.IP)
			}
		}
	}
	if ua, ok := udp.LocalAddr().(*net.UDPAddr); ok {
		add(ua.IP)
	}
	for _, ln := range lns {
		if ln == nil {
			continue
		}
		if ta, ok := ln.Addr().(*net.TCPAddr); ok {
			add(ta.IP)
		}
	}
	return self
}

func portOf(a net.Addr) int {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.Port
	case *net.TCPAddr:
		return a.Port
	}
	if _, p, err := net.SplitHostPort(a.String()); err == nil {
		n, _ := strconv.Atoi(p)
		return n
	}
	return 0
}
