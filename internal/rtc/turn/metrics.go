package turn

// Metrics receives the server's counters. Implementations must be safe for concurrent use and
// must not block: they are called on pion's packet-handling goroutines. Labels are drawn from
// small fixed sets so they can become Prometheus label values.
type Metrics interface {
	// AllocationCreated and AllocationDeleted bracket every relay allocation (a gauge).
	AllocationCreated()
	AllocationDeleted()
	// AuthRefused counts refused authentications: "malformed", "realm", "expired"
	// or "integrity" (wrong password).
	AuthRefused(reason string)
	// QuotaRefused counts allocations refused by the per-user quota.
	QuotaRefused()
	// PeerRefused counts permissions refused by the peer policy, by class (the Class*
	// constants), and packets dropped because they targeted a non-relay port of the server.
	PeerRefused(class string)
}

type noMetrics struct{}

func (noMetrics) AllocationCreated() {}
func (noMetrics) AllocationDeleted() {}
func (noMetrics) AuthRefused(string) {}
func (noMetrics) QuotaRefused()      {}
func (noMetrics) PeerRefused(string) {}
