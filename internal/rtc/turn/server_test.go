package turn

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

// testClock is a settable clock for credential expiry.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// countingMetrics records what the server reports.
type countingMetrics struct {
	created, deleted, quota atomic.Int64
	mu                      sync.Mutex
	auth, peer              map[string]int
	// deletedCh is signalled (without blocking) after each deletion, which
	// the server reports after releasing the user's quota slot.
	deletedCh chan struct{}
}

func newCountingMetrics() *countingMetrics {
	return &countingMetrics{auth: map[string]int{}, peer: map[string]int{}, deletedCh: make(chan struct{}, 1)}
}
func (m *countingMetrics) AllocationCreated() { m.created.Add(1) }
func (m *countingMetrics) AllocationDeleted() {
	m.deleted.Add(1)
	select {
	case m.deletedCh <- struct{}{}:
	default:
	}
}
func (m *countingMetrics) QuotaRefused() { m.quota.Add(1) }
func (m *countingMetrics) AuthRefused(r string) {
	m.mu.Lock()
	m.auth[r]++
	m.mu.Unlock()
}
func (m *countingMetrics) PeerRefused(c string) {
	m.mu.Lock()
	m.peer[c]++
	m.mu.Unlock()
}
func (m *countingMetrics) authCount(r string) int { m.mu.Lock(); defer m.mu.Unlock(); return m.auth[r] }
func (m *countingMetrics) peerCount(c string) int { m.mu.Lock(); defer m.mu.Unlock(); return m.peer[c] }

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		// Not t.Log: pion's allocation goroutines may log while they wind down after Close.
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startServer runs a Server on loopback with random ports, relaying on 127.0.0.1.
func startServer(t *testing.T, mutate func(*Config)) (*Server, *testClock, *countingMetrics) {
	t.Helper()
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{now: time.Now()}
	metrics := newCountingMetrics()
	cfg := Config{
		Secret:           testSecret,
		PacketConn:       udp,
		Listener:         tcp,
		RelayBindAddress: "127.0.0.1",
		Logger:           testLogger(t),
		Metrics:          metrics,
		now:              clock.Now,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s, clock, metrics
}

// newClient returns a listening pion TURN client on its own loopback socket.
func newClient(t *testing.T, s *Server, creds Credentials) *turn.Client {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: s.UDPAddr().String(),
		TURNServerAddr: s.UDPAddr().String(),
		Username:       creds.Username,
		Password:       creds.Password,
		Realm:          DefaultRealm,
		Conn:           conn,
		RTO:            100 * time.Millisecond,
		LoggerFactory:  slogFactory{log: testLogger(t)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		_ = conn.Close()
	})
	return c
}

func allocate(t *testing.T, c *turn.Client) net.PacketConn {
	t.Helper()
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("allocate: %v", err)
	}
	t.Cleanup(func() { _ = relay.Close() })
	return relay
}

// authedRequest performs a long-term-credential STUN transaction over the client's socket (so
// on the allocation's 5-tuple): a first unauthenticated attempt fetches the nonce, the second
// carries USERNAME, REALM, NONCE and MESSAGE-INTEGRITY.
func authedRequest(t *testing.T, c *turn.Client, s *Server, creds Credentials, method stun.Method, attrs ...stun.Setter) *stun.Message {
	t.Helper()
	build := func(extra ...stun.Setter) *stun.Message {
		setters := append([]stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}, attrs...)
		setters = append(setters, extra...)
		m, err := stun.Build(setters...)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	res, err := c.PerformTransaction(build(), s.UDPAddr(), false)
	if err != nil {
		t.Fatal(err)
	}
	var nonce stun.Nonce
	if err := nonce.GetFrom(res.Msg); err != nil {
		t.Fatalf("no nonce in %v: %v", res.Msg, err)
	}
	res, err = c.PerformTransaction(build(
		stun.NewUsername(creds.Username),
		stun.NewRealm(DefaultRealm),
		nonce,
		stun.NewLongTermIntegrity(creds.Username, DefaultRealm, creds.Password),
		stun.Fingerprint,
	), s.UDPAddr(), false)
	if err != nil {
		t.Fatal(err)
	}
	return res.Msg
}

func errorCode(m *stun.Message) stun.ErrorCode {
	var code stun.ErrorCodeAttribute
	if m.Type.Class != stun.ClassErrorResponse || code.GetFrom(m) != nil {
		return 0
	}
	return code.Code
}

func TestAllocateRefusesExpiredAndForgedCredentials(t *testing.T) {
	s, clock, metrics := startServer(t, nil)
	now := clock.Now()

	good := s.Mint("alice", now)
	allocate(t, newClient(t, s, good))

	expired := MintCredentials(testSecret, "alice", now.Add(-time.Second))
	if _, err := newClient(t, s, expired).Allocate(); err == nil {
		t.Fatal("allocation with expired credentials succeeded")
	}
	if metrics.authCount("expired") == 0 {
		t.Error("expired refusal not counted")
	}

	forged := good
	forged.Password = MintCredentials("a guessed secret that is long enough", "alice", now.Add(time.Hour)).Password
	if _, err := newClient(t, s, forged).Allocate(); err == nil {
		t.Fatal("allocation with a forged password succeeded")
	}
	if metrics.authCount("integrity") == 0 {
		t.Error("integrity refusal not counted")
	}

	// Stretching the expiry of a valid credential breaks its HMAC.
	stretched := good
	stretched.Username = MintCredentials(testSecret, "alice", now.Add(1000*time.Hour)).Username
	if _, err := newClient(t, s, stretched).Allocate(); err == nil {
		t.Fatal("allocation with a re-dated username succeeded")
	}

	malformed := Credentials{Username: "alice", Password: sign(testSecret, "alice")}
	if _, err := newClient(t, s, malformed).Allocate(); err == nil {
		t.Fatal("allocation with a username without expiry succeeded")
	}
	if got := s.AllocationCount(); got != 1 {
		t.Fatalf("%d allocations, want 1", got)
	}
}

func TestLoopbackPeerRefusedByDefault(t *testing.T) {
	s, clock, metrics := startServer(t, nil) // no allow-list
	creds := s.Mint("mallory", clock.Now())
	c := newClient(t, s, creds)
	allocate(t, c)

	err := c.CreatePermission(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22})
	var terr *stun.TurnError
	if !errors.As(err, &terr) || terr.ErrorCodeAttr.Code != stun.CodeForbidden {
		t.Fatalf("CreatePermission to 127.0.0.1 = %v, want 403 Forbidden", err)
	}
	if err := c.CreatePermission(&net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 80}); err == nil {
		t.Fatal("CreatePermission to 10.0.0.1 succeeded")
	}

	// The CVE-2026-27624 form: an IPv6-family XOR-PEER-ADDRESS holding ::ffff:127.0.0.1.
	// pion's client would re-encode it as IPv4, so the attribute is built by hand. pion's
	// family check lets a mapped address through to an IPv4 allocation (its To4 is not nil),
	// so it is the peer policy that must answer 403.
	for _, peer := range []string{"::ffff:127.0.0.1", "::ffff:0.0.0.0", "::ffff:8.8.8.8"} {
		res := authedRequest(t, c, s, creds, stun.MethodCreatePermission, ipv6PeerAddress(net.ParseIP(peer), 22))
		if code := errorCode(res); code != stun.CodeForbidden {
			t.Errorf("CreatePermission to %s: %v (code %d), want 403", peer, res, code)
		}
	}
	// Pure IPv6 peers on an IPv4 allocation stop at pion's family check (443) already.
	for _, peer := range []string{"::1", "::"} {
		res := authedRequest(t, c, s, creds, stun.MethodCreatePermission, ipv6PeerAddress(net.ParseIP(peer), 22))
		if res.Type.Class != stun.ClassErrorResponse {
			t.Errorf("CreatePermission to %s: %v, want an error", peer, res)
		}
	}
	// A routable peer is granted.
	if err := c.CreatePermission(&net.UDPAddr{IP: net.IPv4(192, 0, 43, 10), Port: 9}); err != nil {
		t.Fatalf("CreatePermission to a public peer: %v", err)
	}
	if metrics.peerCount(ClassLoopback) < 2 {
		t.Errorf("loopback refusals counted %d", metrics.peerCount(ClassLoopback))
	}
}

// ipv6PeerAddress encodes XOR-PEER-ADDRESS with the IPv6 family whatever ip holds
// (RFC 8489 section 14.2).
func ipv6PeerAddress(ip net.IP, port int) stun.Setter {
	return rawAttr(func(m *stun.Message) {
		v := make([]byte, 20)
		binary.BigEndian.PutUint16(v[0:2], 0x02)
		binary.BigEndian.PutUint16(v[2:4], uint16(port)^uint16(magicCookie>>16))
		var key [16]byte
		binary.BigEndian.PutUint32(key[0:4], magicCookie)
		copy(key[4:], m.TransactionID[:])
		ip16 := ip.To16()
		for i := range 16 {
			v[4+i] = ip16[i] ^ key[i]
		}
		m.Add(stun.AttrXORPeerAddress, v)
	})
}

type rawAttr func(m *stun.Message)

func (f rawAttr) AddTo(m *stun.Message) error { f(m); return nil }

// TestRefreshOutlivesCredentialTTL: expiry is checked when the allocation is created only, so
// a call keeps its relay past the TTL, while the same credential can no longer allocate.
func TestRefreshOutlivesCredentialTTL(t *testing.T) {
	s, clock, _ := startServer(t, func(c *Config) {
		c.AllowPeers = []string{"127.0.0.1"}
		c.CredentialTTL = time.Minute
	})
	creds := s.Mint("carol", clock.Now())
	c := newClient(t, s, creds)
	allocate(t, c)

	clock.Set(creds.Expires.Add(time.Hour)) // the credential is an hour past its expiry

	res := authedRequest(t, c, s, creds, stun.MethodRefresh, turnLifetime(10*time.Minute))
	if res.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("refresh after expiry: %v (code %d)", res, errorCode(res))
	}
	if err := c.CreatePermission(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}); err != nil {
		t.Fatalf("CreatePermission after expiry: %v", err)
	}
	if _, err := newClient(t, s, creds).Allocate(); err == nil {
		t.Fatal("a new allocation with the expired credential succeeded")
	}
	// Refresh still checks the password.
	forged := creds
	forged.Password = sign("a guessed secret that is long enough", creds.Username)
	if res := authedRequest(t, c, s, forged, stun.MethodRefresh, turnLifetime(time.Minute)); errorCode(res) != stun.CodeUnauthorized {
		t.Fatalf("forged refresh: %v", res)
	}
}

type turnLifetime time.Duration

func (l turnLifetime) AddTo(m *stun.Message) error {
	v := make([]byte, 4)
	binary.BigEndian.PutUint32(v, uint32(time.Duration(l)/time.Second))
	m.Add(stun.AttrLifetime, v)
	return nil
}

func TestUserQuota(t *testing.T) {
	s, clock, metrics := startServer(t, func(c *Config) { c.UserQuota = 2 })
	now := clock.Now()

	first := allocate(t, newClient(t, s, s.Mint("dave", now)))
	allocate(t, newClient(t, s, s.Mint("dave", now))) // fresh credentials, same user

	if _, err := newClient(t, s, s.Mint("dave", now)).Allocate(); err == nil {
		t.Fatal("third allocation beyond a quota of 2 succeeded")
	}
	if metrics.quota.Load() != 1 {
		t.Fatalf("quota refusals %d", metrics.quota.Load())
	}
	allocate(t, newClient(t, s, s.Mint("erin", now))) // another user is not affected

	// Releasing an allocation frees its slot.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for s.quota.activeFor("dave") != 1 {
		select {
		case <-metrics.deletedCh:
		case <-deadline.C:
			t.Fatal("deallocation not seen")
		}
	}
	allocate(t, newClient(t, s, s.Mint("dave", now)))
	if got := metrics.created.Load(); got != 4 {
		t.Fatalf("created %d", got)
	}
}

func TestStartAndCloseLifecycle(t *testing.T) {
	s, err := New(Config{Secret: testSecret, ListenUDP: "127.0.0.1:0", ListenTCP: "127.0.0.1:0", RelayBindAddress: "127.0.0.1", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.ICEServers("x", time.Now()); len(got) != 0 {
		t.Fatalf("ICE servers before Start: %v", got)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); !errors.Is(err, ErrStarted) {
		t.Fatalf("second Start: %v", err)
	}
	// A TURN-over-TCP client that stays connected must not keep a goroutine past Close.
	conn, err := net.Dial("tcp4", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	servers := s.ICEServers("x", time.Now())
	if len(servers) != 2 || len(servers[1].URLs) != 2 {
		t.Fatalf("ICE servers: %+v", servers)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after Close")
	}
}

const magicCookie = 0x2112A442 // RFC 8489 section 5
