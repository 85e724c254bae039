package server_test

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/sori-dev/sori/internal/transport/ws/wstest"
)

// rawConn is wstest's WebSocket client written against RFC 6455 by hand, so
// tests can send what no well-behaved library would (unmasked frames,
// reserved opcodes, fragmented pings, invalid UTF-8) and can stop reading at
// will.
type rawConn = wstest.Conn

// frameOpts shapes one outbound frame (rawConn.WriteFrame).
type frameOpts = wstest.FrameOpts

// rawDial opens a TCP connection and performs the opening handshake with the
// sori.v1 subprotocol; it requires 101.
func rawDial(t *testing.T, ts *testServer, extraHeaders ...string) *rawConn {
	t.Helper()
	return wstest.Dial(t, strings.TrimPrefix(ts.URL, "http://"), nil, extraHeaders...)
}

// rawHandshake sends a GET /ws with the standard upgrade headers plus extra
// ("Name: value"; a header named in extra with an empty value is left out)
// and returns the connection and the response.
func rawHandshake(t *testing.T, ts *testServer, setup func(*net.TCPConn), extra ...string) (*rawConn, *http.Response) {
	t.Helper()
	return wstest.Handshake(t, strings.TrimPrefix(ts.URL, "http://"), setup, extra...)
}
