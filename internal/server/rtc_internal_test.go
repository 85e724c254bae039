package server

import "testing"

func TestTURNHostFollowsHTTPListen(t *testing.T) {
	for listen, want := range map[string][2]string{
		"127.0.0.1:7700":   {"127.0.0.1", "127.0.0.1"},
		"localhost:7700":   {"127.0.0.1", "127.0.0.1"},
		"[::1]:7700":       {"127.0.0.1", "127.0.0.1"},
		":7700":            {"", ""},
		"0.0.0.0:7700":     {"", ""},
		"[::]:7700":        {"", ""},
		"10.1.2.3:7700":    {"10.1.2.3", "10.1.2.3"},
		"[2001:db8::1]:80": {"", ""},
		"sori.example:80":  {"", ""},
		"nonsense":         {"", ""},
	} {
		if host, relay := turnHost(listen); host != want[0] || relay != want[1] {
			t.Errorf("turnHost(%q) = %q, %q; want %q, %q", listen, host, relay, want[0], want[1])
		}
	}
}
