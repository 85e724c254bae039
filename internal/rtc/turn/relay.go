package turn

import (
	"net"
	"net/netip"
	"sync"

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
// the client.
type trackingListener struct {
	net.Listener

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		_ = conn.Close()
		return nil, net.ErrClosed
	}
	tc := &trackedConn{Conn: conn, l: l}
	l.conns[tc] = struct{}{}
	return tc, nil
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
	l    *trackingListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}
