package bench

import "testing"

// TestSaturationBound: the search's first step above the saturating rate
// decides what bounded it: a full server core, a full load-generator core
// with the server's not full (the client's rate), or neither at half of its
// core (the machine's other work); a step further up or one that kept up
// does not count.
func TestSaturationBound(t *testing.T) {
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
		serverKnown    bool
		want           string
	}{
		{0.97, 0.40, true, BoundClient},
		{0.97, 0.95, true, BoundServer}, // both full: the server is the bound
		{0.60, 0.99, true, BoundServer},
		{0.20, 0.15, true, BoundContention},
		{0.70, 0.60, true, ""},        // neither full nor idle: the shares do not say
		{0.97, 0, false, BoundClient}, // server unknown (no --server-pid): the client's core was full
		{0.20, 0, false, ""},          // server unknown: contention cannot be told
	} {
		if got := saturationBound(steps(tc.client, tc.server), 141, tc.serverKnown); got != tc.want {
			t.Errorf("client %.2f server %.2f (known %v): %q, want %q", tc.client, tc.server, tc.serverKnown, got, tc.want)
		}
	}
	if got := saturationBound(nil, 0, true); got != "" {
		t.Errorf("without steps: %q", got)
	}
}
