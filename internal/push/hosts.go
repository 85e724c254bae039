package push

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Web Push endpoints come from browsers, but the server only sees what a
// client posts: without a check, any logged-in user could make the server
// POST to any URL, an internal admin page or a cloud metadata service
// among them (server-side request forgery). So an endpoint must be an
// https URL on the default port whose host is one of the push services
// the operator allows (a name, never an IP literal), and every request
// connects only to public addresses (checked on each dialed address after
// DNS resolution, so a name that resolves, or later rebinds, to an
// internal address is refused too) and follows no redirect.

// DefaultHosts are the push services of the major browsers: Chrome and
// other Chromium browsers (FCM), Firefox (Mozilla autopush), Edge (WNS)
// and Safari (Apple). A "*." entry matches every subdomain of the rest.
var DefaultHosts = []string{
	"fcm.googleapis.com",
	"*.push.services.mozilla.com",
	"*.notify.windows.com",
	"web.push.apple.com",
	"*.push.apple.com",
}

// ValidHostPattern reports (as nil) whether p is a host name or a "*."
// pattern the allow-list accepts: letters, digits, '-' and '.', no IP
// literal.
func ValidHostPattern(p string) error {
	name := strings.TrimPrefix(p, "*.")
	if name == "" || len(name) > 253 || strings.Contains(name, "..") || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") {
		return fmt.Errorf("push host %q: want a host name such as push.example.com or *.example.com", p)
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return fmt.Errorf("push host %q: an IP address is not a push service's host name", p)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return fmt.Errorf("push host %q: want a host name such as push.example.com or *.example.com", p)
		}
	}
	return nil
}

// hostAllowed reports whether host (lower case, no port) matches one of
// patterns.
func hostAllowed(host string, patterns []string) bool {
	for _, p := range patterns {
		p = strings.ToLower(p)
		if suffix, ok := strings.CutPrefix(p, "*."); ok {
			if strings.HasSuffix(host, "."+suffix) {
				return true
			}
		} else if host == p {
			return true
		}
	}
	return false
}

var errEndpoint = badRequest("endpoint must be an https URL of at most 2048 bytes")

// checkEndpoint validates a subscription endpoint against the allow-list
// (see the top of this file).
func (s *Service) checkEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || len(endpoint) > maxEndpoint || u.Host == "" || u.User != nil || u.Opaque != "" ||
		!(u.Scheme == "https" || s.cfg.AllowHTTP && u.Scheme == "http") {
		return errEndpoint
	}
	host := strings.ToLower(u.Hostname())
	if !s.cfg.AllowPrivate {
		if _, err := netip.ParseAddr(host); err == nil || strings.Contains(host, ":") {
			return badRequest("endpoint must name a push service by host name, not by IP address")
		}
		if p := u.Port(); p != "" && p != "443" {
			return badRequest("endpoint must use the default https port")
		}
	}
	if !hostAllowed(strings.TrimSuffix(host, "."), s.cfg.Hosts) {
		return badRequest(fmt.Sprintf("endpoint host %q is not an allowed push service (the server allows: %s)", host, strings.Join(s.cfg.Hosts, ", ")))
	}
	return nil
}

// errPrivateAddress is the dial refusal of a non-public address.
var errPrivateAddress = errors.New("push: refusing to connect to a non-public address")

// publicAddr reports whether a is a global unicast address outside the
// private, shared, loopback, link-local, documentation and reserved
// ranges: the only kind a push service has.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// nonPublic are the special-purpose ranges IsGlobalUnicast and IsPrivate
// let through (RFC 6890 and successors).
var nonPublic = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15", "198.51.100.0/24",
		"203.0.113.0/24", "240.0.0.0/4", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32",
		"2002::/16", "fec0::/10",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// guardedClient is the default HTTP client of push requests: it connects
// only to public addresses, follows no redirect (a push service answers
// 201; a redirect could point anywhere) and ignores proxy settings, so
// the address check sees the real peer. Without guard (AllowPrivate, for
// tests) any address is dialed.
func guardedClient(guard bool) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if guard {
		d.Control = checkDialed
	}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{Timeout: sendTimeout, Transport: tr, CheckRedirect: noRedirect}
}

// checkDialed is the dialer's Control: it runs for each address a
// connection is about to be made to, after name resolution.
func checkDialed(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !publicAddr(a) {
		return fmt.Errorf("%w: %s", errPrivateAddress, host)
	}
	return nil
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
