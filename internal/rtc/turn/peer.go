package turn

import (
	"net"
	"net/netip"
)

// Refusal classes reported by the peer policy (and to Metrics.PeerRefused).
const (
	ClassUnspecified   = "unspecified"
	ClassLoopback      = "loopback"
	ClassPrivate       = "private"
	ClassLinkLocal     = "link-local"
	ClassMulticast     = "multicast"
	ClassCGNAT         = "cgnat"
	ClassReserved      = "reserved"
	Class6to4          = "6to4"
	ClassTeredo        = "teredo"
	ClassNAT64         = "nat64"
	ClassIPv4Mapped    = "ipv4-mapped"
	ClassIPv4Compat    = "ipv4-compatible"
	ClassInvalid       = "invalid"
	ClassSelfOtherPort = "self-non-relay-port"
)

type classRange struct {
	prefix netip.Prefix
	class  string
}

// forbiddenRanges are the peer ranges a public TURN relay must not reach: anything that is not
// globally routable unicast (RFC 6890 special-purpose registries), plus the IPv6 ranges that
// embed an IPv4 address, because an embedded 127.0.0.1 or 10.x is the bypass of
// CVE-2020-26262 / CVE-2026-27624. Checked in order; more specific first where they overlap.
var forbiddenRanges = func() []classRange {
	r := func(s, class string) classRange { return classRange{netip.MustParsePrefix(s), class} }
	return []classRange{
		// IPv4. 0.0.0.0/8 is "this network": Linux delivers 0.0.0.0 to the loopback host.
		r("0.0.0.0/8", ClassUnspecified),
		r("127.0.0.0/8", ClassLoopback),
		r("10.0.0.0/8", ClassPrivate),
		r("172.16.0.0/12", ClassPrivate),
		r("192.168.0.0/16", ClassPrivate),
		r("100.64.0.0/10", ClassCGNAT),
		r("169.254.0.0/16", ClassLinkLocal),
		r("224.0.0.0/4", ClassMulticast),
		r("240.0.0.0/4", ClassReserved), // includes 255.255.255.255 broadcast
		r("192.0.0.0/24", ClassReserved),
		r("192.0.2.0/24", ClassReserved),
		r("198.18.0.0/15", ClassReserved),
		r("198.51.100.0/24", ClassReserved),
		r("203.0.113.0/24", ClassReserved),

		// IPv6.
		r("::/128", ClassUnspecified),
		r("::1/128", ClassLoopback),
		r("::ffff:0:0/96", ClassIPv4Mapped),   // only reached if a caller did not unmap
		r("::ffff:0:0:0/96", ClassIPv4Mapped), // "IPv4-translated", RFC 2765
		r("::/96", ClassIPv4Compat),           // deprecated ::a.b.c.d, RFC 4291 2.5.5.1
		r("64:ff9b::/96", ClassNAT64),         // RFC 6052
		r("64:ff9b:1::/48", ClassNAT64),       // RFC 8215 local-use NAT64
		r("2002::/16", Class6to4),             // RFC 3056, embeds an IPv4 address
		r("2001::/32", ClassTeredo),           // RFC 4380, embeds an IPv4 address
		r("fc00::/7", ClassPrivate),           // unique local
		r("fec0::/10", ClassPrivate),          // deprecated site-local
		r("fe80::/10", ClassLinkLocal),
		r("ff00::/8", ClassMulticast),
		r("100::/64", ClassReserved),      // discard-only
		r("2001:db8::/32", ClassReserved), // documentation
	}
}()

// classify returns the refusal class of a peer address, or "" when it is routable unicast.
// An IPv4-mapped IPv6 address is refused as such even when the embedded IPv4 address is
// public: a legitimate client names an IPv4 peer with the IPv4 address family, never with a
// mapped IPv6 one; the class of the embedded address is reported when it is itself forbidden.
func classify(addr netip.Addr) string {
	if !addr.IsValid() {
		return ClassInvalid
	}
	if addr.Is4In6() {
		if c := classify(addr.Unmap()); c != "" {
			return c
		}
		return ClassIPv4Mapped
	}
	addr = addr.WithZone("")
	for _, r := range forbiddenRanges {
		if r.prefix.Contains(addr) {
			return r.class
		}
	}
	return ""
}

// peerPolicy decides which peers the relay may reach. It is immutable after construction and
// safe for concurrent use.
type peerPolicy struct {
	allow        []netip.Prefix
	self         map[netip.Addr]struct{} // the server's own addresses, unmapped
	relayPortMin uint16
	relayPortMax uint16
	selfPorts    []uint16 // Config.AllowSelfPorts
	metrics      Metrics
}

// allowed reports whether an explicit allow-list entry covers addr (unmapped).
func (p *peerPolicy) allowed(addr netip.Addr) bool {
	addr = addr.Unmap().WithZone("")
	for _, pr := range p.allow {
		if pr.Contains(addr) {
			return true
		}
	}
	return false
}

// refusal returns why the relay must not grant a permission to peer, or "" to grant it.
// The server's own public addresses pass here: TURN permissions carry no port, so the port
// restriction for them is enforced on every relayed packet by guardedPacketConn.
func (p *peerPolicy) refusal(peer net.IP) string {
	addr, ok := netip.AddrFromSlice(peer)
	if !ok {
		return ClassInvalid
	}
	if p.allowed(addr) {
		return ""
	}
	return classify(addr)
}

// permit is the pion PermissionHandler: it runs for CreatePermission, ChannelBind and
// Connect (RFC 6062) requests, before any data can be relayed to the peer.
func (p *peerPolicy) permit(_ net.Addr, peer net.IP) bool {
	if class := p.refusal(peer); class != "" {
		p.metrics.PeerRefused(class)
		return false
	}
	return true
}

// mayRelayTo reports whether a relay socket may send to dst. It refuses the server's own
// addresses except on relay ports and the allowed self ports (the SFU's), so that two relayed peers on this server can talk
// (relay-to-relay) while nothing else the host listens on is reachable through the relay.
func (p *peerPolicy) mayRelayTo(dst netip.AddrPort) bool {
	addr := dst.Addr().Unmap().WithZone("")
	if _, own := p.self[addr]; !own {
		return true
	}
	if p.allowed(addr) {
		return true
	}
	port := dst.Port()
	if port >= p.relayPortMin && port <= p.relayPortMax {
		return true
	}
	for _, sp := range p.selfPorts {
		if port == sp {
			return true
		}
	}
	return false
}
