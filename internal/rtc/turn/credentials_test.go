package turn

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

const testSecret = "0123456789abcdef0123456789abcdef"

func TestMintAndParse(t *testing.T) {
	exp := time.Unix(1_900_000_000, 0)
	c := MintCredentials(testSecret, "alice:laptop", exp)
	if c.Username != "1900000000:alice:laptop" {
		t.Fatalf("username %q", c.Username)
	}
	if !c.Expires.Equal(exp) {
		t.Fatalf("expires %v", c.Expires)
	}
	// The password is base64(HMAC-SHA1(secret, username)); coturn's use-auth-secret and
	// pion's LongTermTURNRESTAuthHandler compute the same, so a deployment can swap servers.
	if c.Password != sign(testSecret, c.Username) || len(c.Password) != 28 {
		t.Fatalf("password %q", c.Password)
	}
	if MintCredentials("another secret, just as long....", "alice:laptop", exp).Password == c.Password {
		t.Fatal("password does not depend on the secret")
	}
	gotExp, user, ok := parseUsername(c.Username)
	if !ok || user != "alice:laptop" || !gotExp.Equal(exp) {
		t.Fatalf("parse = %v %q %v", gotExp, user, ok)
	}
	for _, bad := range []string{"", "alice", "1900000000", "1900000000:", ":alice", "x:alice", "+1:alice", "-1:alice", "99999999999999999999:alice"} {
		if _, _, ok := parseUsername(bad); ok {
			t.Errorf("parseUsername(%q) accepted", bad)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		err  string
	}{
		{"defaults", Config{Secret: testSecret}, ""},
		{"short secret", Config{Secret: "short"}, "secret"},
		{"port range", Config{Secret: testSecret, RelayPortMin: 5000, RelayPortMax: 4000}, "range"},
		{"half range", Config{Secret: testSecret, RelayPortMin: 5000}, "range"},
		{"bad external", Config{Secret: testSecret, ExternalIP: "example.com"}, "external"},
		{"bad udp", Config{Secret: testSecret, ListenUDP: "3478"}, "UDP"},
		{"ipv6 listen", Config{Secret: testSecret, ListenUDP: "[::]:3478"}, "IPv4"},
		{"tls without key", Config{Secret: testSecret, CertFile: "c.pem"}, "TLS"},
		{"bad allow", Config{Secret: testSecret, AllowPeers: []string{"10.0.0.0/33"}}, "allowed peer"},
		{"bad realm", Config{Secret: testSecret, Realm: `a"b`}, "realm"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: error %v, want one mentioning %q", tt.name, err, tt.err)
		}
	}
	d := (&Config{}).withDefaults()
	if d.ListenUDP != ":3478" || d.ListenTCP != ":3478" || d.ListenTLS != ":5349" || d.Realm != "sori" ||
		d.CredentialTTL != 12*time.Hour || d.RelayPortMin != 49152 || d.RelayPortMax != 65535 || d.UserQuota != 30 {
		t.Fatalf("defaults: %+v", d)
	}
}

func TestICEServersJSON(t *testing.T) {
	s, err := New(Config{Secret: testSecret, PublicHost: "turn.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	s.udpPort, s.tcpPort, s.tlsPort = 3478, 3478, 5349 // as after Start with TLS on
	s.publicHost = "turn.example.org"
	now := time.Unix(1_800_000_000, 0)
	b, err := json.Marshal(s.ICEServers("bob", now))
	if err != nil {
		t.Fatal(err)
	}
	c := s.Mint("bob", now)
	want := `[{"urls":["stun:turn.example.org:3478"]},` +
		`{"urls":["turn:turn.example.org:3478?transport=udp","turn:turn.example.org:3478?transport=tcp",` +
		`"turns:turn.example.org:5349?transport=tcp"],"username":"1800043200:bob","credential":"` + c.Password + `"}]`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestQuotaReservations(t *testing.T) {
	q := newQuota(2)
	now := time.Unix(1000, 0)
	first, second := q.reserve("a", now), q.reserve("a", now)
	if !first || !second {
		t.Fatal("first two refused")
	}
	if q.reserve("a", now) {
		t.Fatal("third reservation granted while two are pending")
	}
	if !q.reserve("b", now) {
		t.Fatal("quota is not per user")
	}
	q.created("a")
	q.created("a")
	if q.reserve("a", now) || q.activeFor("a") != 2 {
		t.Fatal("third granted with two live allocations")
	}
	q.deleted("a")
	if !q.reserve("a", now) {
		t.Fatal("slot not released by deletion")
	}
	// A reservation whose allocation never appeared (relay socket failed) expires.
	if q.reserve("a", now) {
		t.Fatal("over quota")
	}
	if !q.reserve("a", now.Add(reservationTTL+time.Second)) {
		t.Fatal("stale reservation not expired")
	}
	if !newQuota(-1).reserve("a", now) {
		t.Fatal("negative quota is unlimited")
	}
}
