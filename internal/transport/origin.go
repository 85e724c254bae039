package transport

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// OriginPolicy decides which browser origins may open a session, the defence
// against cross-site WebSocket hijacking: a page on another site could
// otherwise open a connection that carries the user's cookies.
type OriginPolicy struct {
	// Allowed lists origins ("https://app.example.com") that may connect in
	// addition to the server's own; "*" allows any origin.
	Allowed []string
}

// Check reports whether r may proceed. Requests without an Origin header come
// from non-browser clients and are allowed: they cannot carry a victim's
// ambient credentials. A browser always sends Origin on WebSocket handshakes.
func (p OriginPolicy) Check(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	for _, a := range p.Allowed {
		if a == "*" || strings.EqualFold(a, origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// ClientIP returns the IP address of the peer that opened r's connection.
// Proxy headers are not trusted: a deployment behind a proxy should enforce
// per-IP limits there.
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
