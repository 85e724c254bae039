package lab

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// counters measure one transport's run at the socket: every byte the
// clients' connections read or wrote (HTTP headers and bodies, WebSocket
// framing; not TCP/IP headers) and every HTTP request they made.
type counters struct {
	up, down, requests atomic.Int64
}

type countingConn struct {
	net.Conn
	c *counters
}

func (cc countingConn) Read(p []byte) (int, error) {
	n, err := cc.Conn.Read(p)
	cc.c.down.Add(int64(n))
	return n, err
}

func (cc countingConn) Write(p []byte) (int, error) {
	n, err := cc.Conn.Write(p)
	cc.c.up.Add(int64(n))
	return n, err
}

type countingRoundTripper struct {
	rt http.RoundTripper
	c  *counters
}

func (t countingRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	t.c.requests.Add(1)
	return t.rt.RoundTrip(r)
}

// httpClient returns a client whose connections and requests are counted.
func (c *counters) httpClient(conns int) (*http.Client, func()) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return countingConn{nc, c}, nil
		},
		MaxIdleConnsPerHost: conns,
		DisableCompression:  true,
	}
	return &http.Client{Transport: countingRoundTripper{tr, c}}, tr.CloseIdleConnections
}
