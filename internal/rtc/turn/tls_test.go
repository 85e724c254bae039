package turn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"
)

func selfSignedCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "turn.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"turn.test"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestAllocateOverTLS: a client reaching the server over TURN/TLS gets a relay, and the
// ICE-server list carries the turns: URL.
func TestAllocateOverTLS(t *testing.T) {
	cert := selfSignedCert(t)
	s, clock, _ := startServer(t, func(c *Config) {
		c.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		c.ListenTLS = "127.0.0.1:0"
		c.PublicHost = "turn.test"
	})
	servers := s.ICEServers("frank", clock.Now())
	urls := strings.Join(servers[len(servers)-1].URLs, " ")
	if !strings.Contains(urls, "turns:turn.test:") {
		t.Fatalf("no turns: URL in %s", urls)
	}

	pool := x509.NewCertPool()
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	pool.AddCert(leaf)
	conn, err := tls.Dial("tcp4", s.TLSAddr().String(), &tls.Config{RootCAs: pool, ServerName: "turn.test"})
	if err != nil {
		t.Fatal(err)
	}
	stunConn := turn.NewSTUNConn(conn)
	creds := s.Mint("frank", clock.Now())
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: s.TLSAddr().String(),
		TURNServerAddr: s.TLSAddr().String(),
		Username:       creds.Username,
		Password:       creds.Password,
		Realm:          DefaultRealm,
		Conn:           stunConn,
		LoggerFactory:  slogFactory{log: testLogger(t)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		_ = stunConn.Close()
	})
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("allocate over TLS: %v", err)
	}
	defer relay.Close()
	if ua, ok := relay.LocalAddr().(*net.UDPAddr); !ok || !ua.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Fatalf("relay address %v", relay.LocalAddr())
	}
}
