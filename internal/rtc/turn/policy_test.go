package turn

import "testing"

func TestListenForFollowsHTTPListen(t *testing.T) {
	for listen, want := range map[string][3]string{
		"127.0.0.1:7700":   {"127.0.0.1:3478", "127.0.0.1:5349", "127.0.0.1"},
		"localhost:7700":   {"127.0.0.1:3478", "127.0.0.1:5349", "127.0.0.1"},
		"[::1]:7700":       {"127.0.0.1:3478", "127.0.0.1:5349", "127.0.0.1"},
		":7700":            {":3478", ":5349", ""},
		"0.0.0.0:7700":     {":3478", ":5349", ""},
		"[::]:7700":        {":3478", ":5349", ""},
		"10.1.2.3:7700":    {"10.1.2.3:3478", "10.1.2.3:5349", "10.1.2.3"},
		"[2001:db8::1]:80": {":3478", ":5349", ""},
		"sori.example:80":  {":3478", ":5349", ""},
		"nonsense":         {":3478", ":5349", ""},
	} {
		if l, tls, relay := ListenFor(listen); l != want[0] || tls != want[1] || relay != want[2] {
			t.Errorf("ListenFor(%q) = %q, %q, %q; want %q", listen, l, tls, relay, want)
		}
	}
}

func TestDeriveSecret(t *testing.T) {
	a, b := DeriveSecret("token secret one, 32 bytes long.."), DeriveSecret("token secret two, 32 bytes long..")
	if a == b || a != DeriveSecret("token secret one, 32 bytes long..") || len(a) < minSecretLen {
		t.Fatalf("derived %q and %q", a, b)
	}
}
