package metrics

import "testing"

// value returns the value of the series name{label=lv} (label "" for a
// series without labels).
func value(t *testing.T, m *Metrics, name, label, lv string) (float64, bool) {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, s := range f.GetMetric() {
			if label != "" {
				found := false
				for _, l := range s.GetLabel() {
					found = found || l.GetName() == label && l.GetValue() == lv
				}
				if !found {
					continue series
				}
			}
			if g := s.GetGauge(); g != nil {
				return g.GetValue(), true
			}
			return s.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

func TestTURNCollectors(t *testing.T) {
	m := New()
	tm := m.TURN()
	for _, r := range turnAuthReasons {
		if v, ok := value(t, m, "sori_turn_auth_refusals_total", "reason", r); !ok || v != 0 {
			t.Fatalf("auth refusals %q before any: %v %v, want a 0 series", r, v, ok)
		}
	}
	tm.AllocationCreated()
	tm.AllocationCreated()
	tm.AllocationDeleted()
	tm.AuthRefused("expired")
	tm.AuthRefused("expired")
	tm.AuthRefused("integrity")
	tm.QuotaRefused()
	tm.PeerRefused("loopback")
	tm.PeerRefused("self-non-relay-port")
	tm.PeerRefused("loopback")
	for _, c := range []struct {
		name, label, value string
		want               float64
	}{
		{"sori_turn_allocations", "", "", 1},
		{"sori_turn_auth_refusals_total", "reason", "expired", 2},
		{"sori_turn_auth_refusals_total", "reason", "integrity", 1},
		{"sori_turn_auth_refusals_total", "reason", "realm", 0},
		{"sori_turn_quota_refusals_total", "", "", 1},
		{"sori_turn_peer_refusals_total", "class", "loopback", 2},
		{"sori_turn_peer_refusals_total", "class", "self-non-relay-port", 1},
	} {
		if v, ok := value(t, m, c.name, c.label, c.value); !ok || v != c.want {
			t.Errorf("%s{%s=%q} = %v (found %v), want %v", c.name, c.label, c.value, v, ok, c.want)
		}
	}
}
