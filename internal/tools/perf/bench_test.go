package perf

import (
	"testing"
)

// BenchmarkFanout publishes to one channel with 1,000 subscribers of the
// in-process server (and of the raw-TCP harness, for the ratio), as fast as
// they receive, and reports deliveries per second. One op is one
// publication. It is the quick before/after check for changes to the write
// path; TestPerfFanout is the full measurement.
func BenchmarkFanout(b *testing.B) {
	for _, tc := range []struct {
		name  string
		setup func(testing.TB, int, int) *target
	}{{"sori", setupSori}, {"raw-tcp", setupRaw}} {
		b.Run(tc.name, func(b *testing.B) {
			tg := tc.setup(b, 1000, 1)
			defer tg.stop()
			b.ResetTimer()
			sat, err := tg.saturate(b.N, *perfWindow)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(sat.deliveries, "deliveries/s")
			b.ReportMetric(sat.cpuPerDelivery, "cpu-ns/delivery")
			if sat.framesPerWrite > 0 {
				b.ReportMetric(sat.framesPerWrite, "frames/write")
			}
		})
	}
}
