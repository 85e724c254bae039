package turn

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/pion/turn/v5"
)

// waitClosed reads conn until the server closes it. The deadline is the
// test's patience, not a timing claim about the server.
func waitClosed(t *testing.T, conn net.Conn, what string) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 512)
	for {
		_, err := conn.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%s: still open after 30 s", what)
		}
		if err != nil {
			return
		}
	}
}

// TestTCPConnectionWithoutAllocationIsClosed: an unauthenticated TCP
// connection to the TURN port is closed once AllocateTimeout has passed
// (they were held for ever: 3,000 of 3,000 after 63 s), while one that
// allocated stays open and keeps working.
func TestTCPConnectionWithoutAllocationIsClosed(t *testing.T) {
	s, clock, _ := startServer(t, func(c *Config) { c.AllocateTimeout = 300 * time.Millisecond })

	// A client that allocates over TCP right away.
	tcp, err := net.Dial("tcp4", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	stunConn := turn.NewSTUNConn(tcp)
	creds := s.Mint("alice", clock.Now())
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: s.TCPAddr().String(), TURNServerAddr: s.TCPAddr().String(),
		Username: creds.Username, Password: creds.Password, Realm: DefaultRealm,
		Conn: stunConn, LoggerFactory: slogFactory{log: testLogger(t)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); _ = stunConn.Close() })
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("allocate over TCP: %v", err)
	}
	defer relay.Close()

	// One that connects later and sends nothing: it is closed.
	idle, err := net.Dial("tcp4", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	waitClosed(t, idle, "a TCP connection that never allocated")

	// The allocating client's timer ran out before the idle one's: it is
	// still served.
	if _, err := c.SendBindingRequest(); err != nil {
		t.Fatalf("the connection that allocated was closed too: %v", err)
	}
}

// TestTCPConnectionsCappedPerIP: one address holds at most MaxConnsPerIP
// TURN TCP connections; the next is closed at once, and closing one frees
// its place.
func TestTCPConnectionsCappedPerIP(t *testing.T) {
	const perIP = 3
	s, _, _ := startServer(t, func(c *Config) { c.MaxConnsPerIP = perIP; c.AllocateTimeout = -1 })
	dial := func() net.Conn {
		conn, err := net.Dial("tcp4", s.TCPAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	held := make([]net.Conn, perIP)
	for i := range held {
		held[i] = dial()
	}
	waitClosed(t, dial(), "a connection over the per-IP cap")
	held[0].Close()
	// The place is free once the server saw the close; a connection that
	// gets it stays open, which a STUN binding request over it shows.
	for {
		conn := dial()
		c, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: s.TCPAddr().String(), Conn: turn.NewSTUNConn(conn),
			RTO: 100 * time.Millisecond, LoggerFactory: slogFactory{log: testLogger(t)}})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Listen(); err != nil {
			t.Fatal(err)
		}
		_, err = c.SendBindingRequest()
		c.Close()
		if err == nil {
			return
		}
	}
}
