package turn

import (
	"net"
	"net/netip"
	"testing"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		addr string
		want string
	}{
		// Routable unicast passes.
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"172.32.0.1", ""},
		{"100.128.0.1", ""},
		{"2606:4700:4700::1111", ""},
		{"2a00:1450:4001:80b::200e", ""},

		{"0.0.0.0", ClassUnspecified},
		{"0.1.2.3", ClassUnspecified},
		{"::", ClassUnspecified},
		{"127.0.0.1", ClassLoopback},
		{"127.255.255.254", ClassLoopback},
		{"::1", ClassLoopback},
		{"10.0.0.1", ClassPrivate},
		{"172.16.0.1", ClassPrivate},
		{"172.31.255.255", ClassPrivate},
		{"192.168.1.1", ClassPrivate},
		{"fd00::1", ClassPrivate},
		{"fc00::1", ClassPrivate},
		{"fec0::1", ClassPrivate},
		{"169.254.169.254", ClassLinkLocal}, // cloud metadata service
		{"fe80::1", ClassLinkLocal},
		{"fe80::1%eth0", ClassLinkLocal},
		{"224.0.0.1", ClassMulticast},
		{"239.255.255.250", ClassMulticast},
		{"ff02::1", ClassMulticast},
		{"100.64.0.1", ClassCGNAT},
		{"100.127.255.255", ClassCGNAT},
		{"255.255.255.255", ClassReserved},
		{"240.0.0.1", ClassReserved},
		{"192.0.0.8", ClassReserved},
		{"198.18.0.1", ClassReserved},
		{"2001:db8::1", ClassReserved},
		{"2002:7f00:1::", Class6to4},     // 6to4 wrapping 127.0.0.1
		{"2002:0808:0808::1", Class6to4}, // even a public IPv4 inside 6to4
		{"64:ff9b::7f00:1", ClassNAT64},  // NAT64 of 127.0.0.1
		{"64:ff9b::808:808", ClassNAT64},
		{"64:ff9b:1::a00:1", ClassNAT64},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", ClassTeredo},
		{"::127.0.0.1", ClassIPv4Compat}, // deprecated IPv4-compatible form
		{"::ffff:0:7f00:1", ClassIPv4Mapped},

		// IPv4-mapped IPv6 (CVE-2026-27624): the embedded class wins, and a mapped public
		// address is refused as mapped.
		{"::ffff:127.0.0.1", ClassLoopback},
		{"::ffff:0.0.0.0", ClassUnspecified},
		{"::ffff:10.1.2.3", ClassPrivate},
		{"::ffff:169.254.169.254", ClassLinkLocal},
		{"::ffff:100.64.0.1", ClassCGNAT},
		{"::ffff:224.0.0.1", ClassMulticast},
		{"::ffff:8.8.8.8", ClassIPv4Mapped},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if got := classify(netip.MustParseAddr(tt.addr)); got != tt.want {
				t.Errorf("classify(%s) = %q, want %q", tt.addr, got, tt.want)
			}
		})
	}
}

// TestPolicyWireForms checks the permission handler with the net.IP shapes pion decodes from
// XOR-PEER-ADDRESS: 4 bytes for the IPv4 family, 16 bytes for the IPv6 family, so a mapped
// loopback arrives as 16 bytes whose To4() is not nil (the coturn bypass).
func TestPolicyWireForms(t *testing.T) {
	p := &peerPolicy{metrics: noMetrics{}}
	tests := []struct {
		name string
		ip   net.IP
		want bool
	}{
		{"ipv4 public", net.IP{8, 8, 8, 8}, true},
		{"ipv4 loopback", net.IP{127, 0, 0, 1}, false},
		{"ipv4 zero", net.IP{0, 0, 0, 0}, false},
		{"mapped loopback", net.ParseIP("::ffff:127.0.0.1"), false},
		{"mapped zero", net.ParseIP("::ffff:0.0.0.0"), false},
		{"mapped public", net.ParseIP("::ffff:8.8.8.8"), false},
		{"ipv6 public", net.ParseIP("2606:4700:4700::1111"), true},
		{"ipv6 loopback", net.ParseIP("::1"), false},
		{"ipv6 unspecified", net.ParseIP("::"), false},
		{"garbage length", net.IP{1, 2, 3}, false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		if got := p.permit(nil, tt.ip); got != tt.want {
			t.Errorf("%s: permit(%v) = %v, want %v", tt.name, tt.ip, got, tt.want)
		}
	}
}

func TestPolicyAllowList(t *testing.T) {
	allow, err := parsePrefixes([]string{"127.0.0.1", "10.9.0.0/16", "::ffff:192.168.7.0/120"})
	if err != nil {
		t.Fatal(err)
	}
	p := &peerPolicy{allow: allow, metrics: noMetrics{}}
	tests := []struct {
		ip   string
		want bool
	}{
		{"127.0.0.1", true},
		{"::ffff:127.0.0.1", true}, // the same host, normalized
		{"127.0.0.2", false},
		{"10.9.3.4", true},
		{"10.8.3.4", false},
		{"192.168.7.9", true},
		{"192.168.8.9", false},
		{"::1", false},
	}
	for _, tt := range tests {
		if got := p.permit(nil, net.ParseIP(tt.ip)); got != tt.want {
			t.Errorf("permit(%s) = %v, want %v", tt.ip, got, tt.want)
		}
	}
}

func TestMayRelayToSelf(t *testing.T) {
	self := netip.MustParseAddr("203.0.113.7")
	p := &peerPolicy{
		self:         map[netip.Addr]struct{}{self: {}},
		relayPortMin: 50000,
		relayPortMax: 50100,
		selfPorts:    []uint16{7882},
		metrics:      noMetrics{},
	}
	tests := []struct {
		dst  string
		want bool
	}{
		{"203.0.113.7:7882", true}, // the SFU's media port (AllowSelfPorts)
		{"[::ffff:203.0.113.7]:7882", true},
		{"203.0.113.7:7883", false},
		{"203.0.113.7:50000", true}, // another relay on this server (relay-to-relay)
		{"203.0.113.7:50100", true},
		{"203.0.113.7:22", false}, // anything else the host listens on
		{"203.0.113.7:3478", false},
		{"[::ffff:203.0.113.7]:22", false},
		{"198.51.100.1:22", true}, // not self: the permission handler decided
	}
	for _, tt := range tests {
		if got := p.mayRelayTo(netip.MustParseAddrPort(tt.dst)); got != tt.want {
			t.Errorf("mayRelayTo(%s) = %v, want %v", tt.dst, got, tt.want)
		}
	}

	// The guarded relay socket drops what mayRelayTo refuses.
	rec := &recordingPacketConn{}
	g := &guardedPacketConn{PacketConn: rec, policy: p}
	for _, dst := range []string{"203.0.113.7:22", "203.0.113.7:50001"} {
		n, err := g.WriteTo([]byte("x"), net.UDPAddrFromAddrPort(netip.MustParseAddrPort(dst)))
		if n != 1 || err != nil {
			t.Fatalf("WriteTo(%s) = %d, %v", dst, n, err)
		}
	}
	if len(rec.to) != 1 || rec.to[0] != "203.0.113.7:50001" {
		t.Fatalf("relayed to %v, want only the relay port", rec.to)
	}
}

type recordingPacketConn struct {
	net.PacketConn
	to []string
}

func (r *recordingPacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	r.to = append(r.to, addr.String())
	return len(p), nil
}
