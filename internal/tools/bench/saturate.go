package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"time"
)

// Step is one offered rate of the saturating-rate search (Config.FindRate).
type Step struct {
	Rate      float64 `json:"rate"`
	Published int64   `json:"published"`
	Expected  int64   `json:"expected"`
	Delivered int64   `json:"delivered"`
	P50First  float64 `json:"p50_first_half_ms"`
	P50Second float64 `json:"p50_second_half_ms"`
	KeptUp    bool    `json:"kept_up"`
	// ClientCPUShare and ServerCPUShare are the load generator's and the
	// server's (with ServerPID) CPU over the step's publishing, as shares of
	// one core; 0 when unknown. A step that did not keep up with the client
	// at its core's limit and the server below it measured the client.
	ClientCPUShare float64 `json:"client_cpu_share,omitempty"`
	ServerCPUShare float64 `json:"server_cpu_share,omitempty"`
}

// What bounded a rate search (Report.SaturationBound), judged on its first
// step above the saturating rate, the one that decided it.
const (
	BoundServer     = "server"     // the server's core was full (≥ 90%)
	BoundClient     = "client"     // the load generator's core was full, the server's not: the rate is the client's
	BoundContention = "contention" // neither used half of its core: other work on the machine held both back
)

// saturationBound returns what bounded the search whose saturating rate
// is sat (one of the Bound constants), or "" when the shares do not say.
// serverKnown: the server's shares were measured (ServerPID). Shares count
// against one core each, which is what a run pinned with --cpu and
// --server-cpu gives.
func saturationBound(steps []Step, sat float64, serverKnown bool) string {
	var first *Step
	for i := range steps {
		if st := &steps[i]; !st.KeptUp && st.Rate > sat && (first == nil || st.Rate < first.Rate) {
			first = st
		}
	}
	switch {
	case first == nil:
		return ""
	case serverKnown && first.ServerCPUShare >= boundShare:
		return BoundServer
	case first.ClientCPUShare >= boundShare:
		return BoundClient
	case serverKnown && first.ServerCPUShare < 0.5 && first.ClientCPUShare < 0.5:
		return BoundContention
	}
	return ""
}

// resetPhase starts a new measuring phase: counts and latencies from zero.
func (r *run) resetPhase() {
	r.hist.Store(new(Histogram))
	r.published.Store(0)
	r.expected.Store(0)
	r.delivered.Store(0)
}

// step offers rate for StepDuration and reports whether the server kept up:
// the publishers sent at least 95% of the offered publications (the server
// API answers them), at least 99% of the deliveries arrived within the
// step plus half a step, and the median latency of the second half is at
// most twice the first half's plus 2 ms (a queue that keeps growing shows
// in its median before anything is lost).
func (r *run) step(ctx context.Context, rate float64) Step {
	r.resetPhase()
	saved, savedDur := r.cfg.Rate, r.cfg.Duration
	r.cfg.Rate, r.cfg.Duration = rate, r.cfg.StepDuration
	defer func() { r.cfg.Rate, r.cfg.Duration = saved, savedDur }()
	first := r.hist.Load()
	half := time.AfterFunc(r.cfg.StepDuration/2, func() { r.hist.Store(new(Histogram)) })
	self0, selfErr := processCPU(os.Getpid())
	srv0, srvErr := r.pidCPU()
	t0 := time.Now()
	r.publish(ctx)
	half.Stop()
	var clientShare, serverShare float64
	if d := time.Since(t0).Seconds(); d > 0 {
		if self1, err := processCPU(os.Getpid()); err == nil && selfErr == nil {
			clientShare = (self1 - self0) / d
		}
		if srv1, err := r.pidCPU(); err == nil && srvErr == nil {
			serverShare = (srv1 - srv0) / d
		}
	}
	deadline := time.Now().Add(r.cfg.StepDuration / 2)
	for r.delivered.Load() < r.expected.Load() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	second := r.hist.Load()
	st := Step{Rate: rate, Published: r.published.Load(), Expected: r.expected.Load(), Delivered: r.delivered.Load(),
		P50First: ms(first.Quantile(0.5)), P50Second: ms(second.Quantile(0.5)),
		ClientCPUShare: clientShare, ServerCPUShare: serverShare}
	offered := rate * r.cfg.StepDuration.Seconds()
	st.KeptUp = float64(st.Published) >= 0.95*offered && st.Expected > 0 &&
		float64(st.Delivered) >= 0.99*float64(st.Expected) &&
		st.P50Second <= 2*st.P50First+2
	// Let what is still queued arrive before the next step counts.
	for r.delivered.Load() < r.expected.Load() && time.Now().Before(deadline.Add(2*time.Second)) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if r.cfg.Progress != nil {
		verdict := "kept up"
		if !st.KeptUp {
			verdict = "did not keep up"
		}
		fmt.Fprintf(r.cfg.Progress, "\nrate %.0f pub/s: published %d, delivered %d of %d, p50 %.2f → %.2f ms, CPU load gen %.0f%% server %.0f%%: %s\n",
			rate, st.Published, st.Delivered, st.Expected, st.P50First, st.P50Second, 100*st.ClientCPUShare, 100*st.ServerCPUShare, verdict)
	}
	return st
}

// pidCPU is the ServerPID process's CPU seconds; an error without one.
func (r *run) pidCPU() (float64, error) {
	if r.cfg.ServerPID <= 0 {
		return 0, errNoServerPID
	}
	return processCPU(r.cfg.ServerPID)
}

var errNoServerPID = errors.New("bench: no --server-pid")

// findRate returns the highest rate that kept up (Step), doubling from
// Rate and then bisecting geometrically three times (resolution ~9%).
func (r *run) findRate(ctx context.Context) (float64, []Step) {
	var steps []Step
	try := func(rate float64) bool {
		st := r.step(ctx, rate)
		steps = append(steps, st)
		return st.KeptUp
	}
	lo, hi := 0.0, 0.0
	rate := r.cfg.Rate
	for range 16 {
		if ctx.Err() != nil {
			return lo, steps
		}
		if try(rate) {
			lo = rate
			if hi > 0 {
				break
			}
			rate *= 2
			continue
		}
		hi = rate
		if lo > 0 {
			break
		}
		rate /= 2 // the start rate was too high already: go down first
		if rate < 1 {
			return 0, steps
		}
	}
	if lo == 0 || hi == 0 {
		return lo, steps
	}
	for range 3 {
		if ctx.Err() != nil {
			break
		}
		mid := math.Sqrt(lo * hi)
		if try(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, steps
}
