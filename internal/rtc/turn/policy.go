package turn

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/netip"
)

// ListenFor picks the TURN addresses that go with the HTTP listen address,
// for a server that was not told them: a server listening on loopback only
// (Sori's default) does not open TURN to the network, one listening
// everywhere runs TURN everywhere, and one on a specific IPv4 address runs
// TURN there. listen is the UDP and TCP address (port 3478), listenTLS the
// TLS one (port 5349), relay the relay bind address ("" for all interfaces:
// a loopback-only server relays on loopback). TURN is IPv4 only, so a
// specific IPv6 address gets every IPv4 interface.
func ListenFor(httpListen string) (listen, listenTLS, relay string) {
	host, relay := hostFor(httpListen)
	return net.JoinHostPort(host, "3478"), net.JoinHostPort(host, "5349"), relay
}

func hostFor(httpListen string) (host, relay string) {
	h, _, err := net.SplitHostPort(httpListen)
	if err != nil || h == "" {
		return "", ""
	}
	if h == "localhost" {
		return "127.0.0.1", "127.0.0.1"
	}
	ip, err := netip.ParseAddr(h)
	switch {
	case err != nil || ip.IsUnspecified():
		return "", "" // a host name or "0.0.0.0"/"::": every interface
	case ip.IsLoopback():
		return "127.0.0.1", "127.0.0.1"
	case ip.Unmap().Is4():
		s := ip.Unmap().String()
		return s, s
	}
	return "", ""
}

// DeriveSecret makes the TURN secret from the connection-token secret, so
// that every node sharing a token secret also shares the TURN secret, and a
// secret nobody configured is never stored twice. It is one-way: the TURN
// secret does not reveal the token secret.
func DeriveSecret(tokenSecret string) string {
	mac := hmac.New(sha256.New, []byte(tokenSecret))
	mac.Write([]byte("sori turn secret v1"))
	return hex.EncodeToString(mac.Sum(nil))
}
