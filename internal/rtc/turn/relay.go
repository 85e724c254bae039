package turn

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/turn/v5"
)

// relayGenerator opens relay sockets inside the configured port range on RelayBindAddress,
// advertises the external address, and wraps every socket so that the peer policy is applied
// to each outgoing packet (see peerPolicy.mayRelayTo).
type relayGenerator struct {
	ports  *turn.RelayAddressGeneratorPortRange
	policy *peerPolicy
}

func (s *Server) newRelayGenerator(relayIP net.IP) *relayGenerator {
	return &relayGenerator{
		ports: &turn.RelayAddressGeneratorPortRange{
			RelayAddress: relayIP,
			Address:      s.cfg.RelayBindAddress,
			MinPort:      s.cfg.RelayPortMin,
			MaxPort:      s.cfg.RelayPortMax,
			MaxRetries:   30,
		},
		policy: s.policy,
	}
}

func (g *relayGenerator) Validate() error { return g.ports.Validate() }

func (g *relayGenerator) inRange(port int) bool {
	return port == 0 || (port >= int(g.policy.relayPortMin) && port <= int(g.policy.relayPortMax))
}

func (g *relayGenerator) AllocatePacketConn(c turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	if !g.inRange(c.RequestedPort) {
		return nil, nil, errPortOutsideRange
	}
	conn, addr, err := g.ports.AllocatePacketConn(c)
	if err != nil {
		return nil, nil, err
	}
	return &guardedPacketConn{PacketConn: conn, policy: g.policy}, addr, nil
}

func (g *relayGenerator) AllocateListener(c turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	if !g.inRange(c.RequestedPort) {
		return nil, nil, errPortOutsideRange
	}
	return g.ports.AllocateListener(c)
}

// AllocateConn dials a peer for a TCP allocation (RFC 6062 Connect); pion has already asked
// the permission handler about the peer's address, this adds the port rule.
func (g *relayGenerator) AllocateConn(c turn.AllocateConnConfig) (net.Conn, error) {
	if dst, ok := addrPortOf(c.RemoteAddr); !ok || !g.policy.mayRelayTo(dst) {
		g.policy.metrics.PeerRefused(ClassSelfOtherPort)
		return nil, errPeerRefused
	}
	return g.ports.AllocateConn(c)
}

// guardedPacketConn is a relay socket that drops packets the peer policy forbids. Dropping
// (rather than failing the write) keeps a misbehaving client from filling pion's logs.
type guardedPacketConn struct {
	net.PacketConn
	policy *peerPolicy
}

func (c *guardedPacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if dst, ok := addrPortOf(addr); !ok || !c.policy.mayRelayTo(dst) {
		c.policy.metrics.PeerRefused(ClassSelfOtherPort)
		return len(p), nil
	}
	return c.PacketConn.WriteTo(p, addr)
}

func addrPortOf(a net.Addr) (netip.AddrPort, bool) {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort(), true
	case *net.TCPAddr:
		return a.AddrPort(), true
	case nil:
		return netip.AddrPort{}, false
	}
	ap, err := netip.ParseAddrPort(a.String())
	return ap, err == nil
}

// trackingListener remembers the connections it accepted so that Close can end them: pion
// closes the listener on shutdown but leaves accepted connections (and their read loops) to
// the client. It also bounds what a client gets without credentials: at most perIP open
// connections per address (more are closed at accept), and a connection that has not
// allocated within allocTimeout is closed (an idle TCP connection otherwise holds a file
// descriptor of the whole process for ever).
//
// mu guards closed, conns and count; a trackedConn's fields are set under it once.
type trackingListener struct {
	net.Listener
	perIP        int           // 0: no limit
	allocTimeout time.Duration // 0: none

	mu     sync.Mutex
	closed bool
	conns  map[*trackedConn]struct{}
	count  map[netip.Addr]int
}

func newTrackingListener(ln net.Listener, perIP int, allocTimeout time.Duration) *trackingListener {
	return &trackingListener{Listener: ln, perIP: perIP, allocTimeout: allocTimeout,
		conns: map[*trackedConn]struct{}{}, count: map[netip.Addr]int{}}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ap, _ := addrPortOf(conn.RemoteAddr())
		ip := ap.Addr().Unmap()
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			_ = conn.Close()
			return nil, net.ErrClosed
		}
		if l.perIP > 0 && l.count[ip] >= l.perIP {
			l.mu.Unlock()
			_ = conn.Close() // and accept the next: an error would end pion's accept loop
			continue
		}
		tc := &trackedConn{Conn: conn, l: l, ip: ip, remote: conn.RemoteAddr().String()}
		l.conns[tc] = struct{}{}
		l.count[ip]++
		if l.allocTimeout > 0 {
			tc.timer = time.AfterFunc(l.allocTimeout, func() {
				if !tc.allocated.Load() {
					_ = tc.Close()
				}
			})
		}
		l.mu.Unlock()
		return tc, nil
	}
}

// allocated marks the connection from remote as having an allocation: it may stay open.
func (l *trackingListener) allocated(remote net.Addr) {
	if remote == nil {
		return
	}
	key := remote.String()
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		if c.remote == key {
			c.allocated.Store(true)
			if c.timer != nil {
				c.timer.Stop()
			}
		}
	}
}

func (l *trackingListener) closeConns() {
	l.mu.Lock()
	l.closed = true
	conns := make([]net.Conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

type trackedConn struct {
	net.Conn
	l         *trackingListener
	ip        netip.Addr
	remote    string
	timer     *time.Timer
	allocated atomic.Bool
	once      sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		if c.l.count[c.ip]--; c.l.count[c.ip] <= 0 {
			delete(c.l.count, c.ip)
		}
		c.l.mu.Unlock()
		if c.timer != nil {
			c.timer.Stop()
		}
	})
	return c.Conn.Close()
}
