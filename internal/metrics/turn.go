package metrics

import "github.com/prometheus/client_golang/prometheus"

// TURN holds the embedded TURN server's collectors and implements
// turn.Metrics (checked where the server wires it, so that this package need
// not import turn). It is safe for concurrent use and never blocks: pion calls
// it on its packet-handling goroutines.
type TURN struct {
	allocations prometheus.Gauge
	auth        *prometheus.CounterVec
	quota       prometheus.Counter
	peer        *prometheus.CounterVec
}

// turnAuthReasons are the reasons turn.Metrics.AuthRefused reports; their
// series exist from the start, so that a rate over them is never empty.
var turnAuthReasons = []string{"malformed", "realm", "expired", "integrity"}

func newTURN(reg prometheus.Registerer) *TURN {
	t := &TURN{
		allocations: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sori_turn_allocations", Help: "Live TURN relay allocations."}),
		auth: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sori_turn_auth_refusals_total",
			Help: "TURN requests refused at authentication, by reason (malformed, realm, expired, integrity)."}, []string{"reason"}),
		quota: prometheus.NewCounter(prometheus.CounterOpts{Name: "sori_turn_quota_refusals_total",
			Help: "TURN allocations refused by the per-user quota."}),
		peer: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sori_turn_peer_refusals_total",
			Help: "TURN permissions refused by the peer policy, and packets to the server's non-relay ports, by address class."}, []string{"class"}),
	}
	for _, r := range turnAuthReasons {
		t.auth.WithLabelValues(r)
	}
	reg.MustRegister(t.allocations, t.auth, t.quota, t.peer)
	return t
}

// AllocationCreated implements turn.Metrics.
func (t *TURN) AllocationCreated() { t.allocations.Inc() }

// AllocationDeleted implements turn.Metrics.
func (t *TURN) AllocationDeleted() { t.allocations.Dec() }

// AuthRefused implements turn.Metrics.
func (t *TURN) AuthRefused(reason string) { t.auth.WithLabelValues(reason).Inc() }

// QuotaRefused implements turn.Metrics.
func (t *TURN) QuotaRefused() { t.quota.Inc() }

// PeerRefused implements turn.Metrics.
func (t *TURN) PeerRefused(class string) { t.peer.WithLabelValues(class).Inc() }
