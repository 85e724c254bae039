package bench

import "testing"

// TestClientBound: the search's rate is the client's when its first step
// above the saturating rate failed with the load generator's core full and
// the server's not; a step further up, a step that kept up, or a server at
// its limit too do not make it so.
func TestClientBound(t *testing.T) {
	steps := func(client, server float64) []Step {
		return []Step{
			{Rate: 100, KeptUp: true, ClientCPUShare: 0.5, ServerCPUShare: 0.5},
			{Rate: 400, KeptUp: false, ClientCPUShare: 1, ServerCPUShare: 0.2}, // further up: not the one that decides
			{Rate: 200, KeptUp: false, ClientCPUShare: client, ServerCPUShare: server},
			{Rate: 141, KeptUp: true, ClientCPUShare: 0.95, ServerCPUShare: 0.3}, // kept up: not a bound
		}
	}
	for _, tc := range []struct {
		client, server float64
		want           bool
	}{
		{0.97, 0.40, true},  // the client's core was full, the server's not
		{0.97, 0.95, false}, // both full: the server's bound as much as the client's
		{0.60, 0.99, false}, // the server's bound
		{0.97, 0, true},     // server CPU unknown (no --server-pid): the client's core was full
	} {
		if got := clientBound(steps(tc.client, tc.server), 141); got != tc.want {
			t.Errorf("client %.2f server %.2f: clientBound = %v, want %v", tc.client, tc.server, got, tc.want)
		}
	}
	if clientBound(nil, 0) {
		t.Error("client bound without steps")
	}
}
