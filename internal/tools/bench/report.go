package bench

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// boundShare is the share of its pinned core above which a process counts
// as the bound of a run (the load generator: WriteText warns; a rate
// search: saturationBound).
const boundShare = 0.9

// WriteText prints the report as a short human-readable summary.
func (rep *Report) WriteText(w io.Writer) {
	c := rep.Config
	fmt.Fprintf(w, "sori bench: %s, pattern %s, %d conns (room size %d), %.0f pubs/s of %d B for %s\n",
		c.URL, c.Pattern, c.Conns, c.RoomSize, c.Rate, c.Size, c.Duration)
	fmt.Fprintf(w, "  connected     %d in %.1fs\n", rep.Connected, rep.RampSeconds)
	if len(rep.Steps) > 0 {
		for _, st := range rep.Steps {
			verdict := "kept up"
			if !st.KeptUp {
				verdict = "did not keep up"
			}
			fmt.Fprintf(w, "  step          %.0f pub/s: published %d, delivered %d of %d, p50 %.2f → %.2f ms, CPU load gen %.0f%% server %.0f%%: %s\n",
				st.Rate, st.Published, st.Delivered, st.Expected, st.P50First, st.P50Second, 100*st.ClientCPUShare, 100*st.ServerCPUShare, verdict)
		}
		fmt.Fprintf(w, "  saturating    %.0f pub/s; the run below offered %.0f pub/s\n", rep.SaturatingRate, c.Rate)
		switch rep.SaturationBound {
		case BoundServer:
			fmt.Fprintf(w, "  bound         the server: its core was full in the first step that did not keep up\n")
		case BoundClient:
			fmt.Fprintf(w, "  WARNING       the first step that did not keep up had the load generator's core full and the server's not: the saturating rate is the client's\n")
		case BoundContention:
			fmt.Fprintf(w, "  WARNING       in the first step that did not keep up neither process used half of its core: other work on the machine set the saturating rate\n")
		}
	}
	fmt.Fprintf(w, "  published     %d\n", rep.Published)
	fmt.Fprintf(w, "  delivered     %d of %d expected (%.0f/s)\n", rep.Delivered, rep.Expected, rep.DeliveriesSec)
	l := rep.Latency
	fmt.Fprintf(w, "  latency ms    p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  (receive clock: %s)\n", l.P50, l.P90, l.P99, l.P999, l.Max, rep.RxClock)
	fmt.Fprintf(w, "  errors        %d  disconnects %d", rep.Errors, rep.Disconnects)
	if rep.FirstError != "" {
		fmt.Fprintf(w, "  (first: %s)", rep.FirstError)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  server        RSS %.1f MiB (%.1f before publishing), CPU %.2fs = %.2f µs/delivery\n",
		rep.ServerRSS/(1<<20), rep.ServerRSSStart/(1<<20), rep.ServerCPU, rep.ServerCPUPerDel)
	fmt.Fprintf(w, "  load gen      CPU %.2fs = %.0f%% of one core", rep.ClientCPU, 100*rep.ClientCPUShare)
	if c.CPUCore >= 0 && rep.ClientCPUShare >= boundShare {
		fmt.Fprintf(w, ": its core is saturated, the client is the bound")
		if rep.RxClock != RxClockKernel {
			fmt.Fprintf(w, " and the latencies include its queueing")
		}
	}
	fmt.Fprintln(w)
	if c.ServerPID > 0 || c.CPUCore >= 0 {
		fmt.Fprintf(w, "  pinning       server pid %d on CPU %s (CPU from /proc), load generator on CPU %s\n",
			c.ServerPID, cpuName(c.ServerCPUCore), cpuName(c.CPUCore))
	}
	for _, f := range rep.Failed {
		fmt.Fprintf(w, "  FAILED        %s\n", f)
	}
}

// WriteSVG draws the time series: deliveries per second above, latency p50
// and p99 below, on a shared time axis. Hand-written SVG, no dependencies.
func (rep *Report) WriteSVG(w io.Writer) error {
	const (
		width, left, right = 820, 70, 70
		panelH, gap, top   = 170, 50, 56
	)
	height := top + 2*panelH + gap + 60
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	c := rep.Config
	// Two short lines: one long title ran past the right edge in renderers
	// that do not shrink text (rsvg).
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="14" font-weight="bold">sori bench: %d conns, %s, %.0f pubs/s × %d B</text>`+"\n",
		c.Conns, escape(c.Pattern), c.Rate, c.Size)
	fmt.Fprintf(&b, `<text x="10" y="38" fill="#444">%.0f deliveries/s; latency p50 %.2f ms, p99 %.2f ms, max %.2f ms over the whole run</text>`+"\n",
		rep.DeliveriesSec, rep.Latency.P50, rep.Latency.P99, rep.Latency.Max)
	tmax := 1.0
	for _, p := range rep.Series {
		tmax = max(tmax, p.T)
	}
	x := func(t float64) float64 { return left + t/tmax*float64(width-left-right) }
	col := func(f func(Point) float64) []float64 {
		out := make([]float64, len(rep.Series))
		for i, p := range rep.Series {
			out[i] = f(p)
		}
		return out
	}
	line := func(vals []float64, y func(float64) float64, color, dash string) {
		var pts []string
		for i, p := range rep.Series {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.T), y(vals[i])))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", color, dash, strings.Join(pts, " "))
	}
	legend := func(y0, k int, color, name string) {
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s">%s</text>`+"\n", width-right-130, y0+14+16*k, color, name)
	}

	// Panel 1: deliveries/s on the left axis, open connections on their own
	// right axis (on one axis a few hundred connections drew a flat line).
	y0 := top + 20
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">deliveries per second (left) and open connections (right)</text>`+"\n", left, y0-8)
	dels, conns := col(func(p Point) float64 { return p.DeliveriesSec }), col(func(p Point) float64 { return float64(p.Conns) })
	dmax, cmax := niceCeil(maxOf(dels)), niceCeil(maxOf(conns))
	yd := func(v float64) float64 { return float64(y0+panelH) - v/dmax*panelH }
	yc := func(v float64) float64 { return float64(y0+panelH) - v/cmax*panelH }
	for i := 0; i <= 4; i++ {
		f := float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+
			`<text x="%d" y="%.1f" fill="#777">%s</text>`+"\n",
			left, width-right, yd(f*dmax), yd(f*dmax), left-6, yd(f*dmax)+4, short(f*dmax), width-right+6, yd(f*dmax)+4, short(f*cmax))
	}
	line(dels, yd, "#1f77b4", "")
	line(conns, yc, "#999", ` stroke-dasharray="4 3"`)
	legend(y0, 0, "#1f77b4", "deliveries/s")
	legend(y0, 1, "#777", "connections")

	// Panel 2: latency on a log axis, so p50 is not squashed under a p99
	// a hundred times larger; the run's p99 is the dashed line.
	y0 = top + 20 + panelH + gap
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">delivery latency, ms, per interval (log scale); dashed: p99 of the whole run</text>`+"\n", left, y0-8)
	p50s, p99s := col(func(p Point) float64 { return p.P50 }), col(func(p Point) float64 { return p.P99 })
	lo, hi := logRange(append(append([]float64{rep.Latency.P99}, p50s...), p99s...))
	yl := func(v float64) float64 {
		v = max(v, lo)
		return float64(y0+panelH) - (math.Log10(v)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))*panelH
	}
	for v := lo; v <= hi*1.0001; v *= 10 {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			left, width-right, yl(v), yl(v), left-6, yl(v)+4, short(v))
	}
	line(p50s, yl, "#2ca02c", "")
	line(p99s, yl, "#d62728", "")
	if rep.Latency.P99 > 0 {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#d62728" stroke-dasharray="6 4"/>`+"\n",
			left, width-right, yl(rep.Latency.P99), yl(rep.Latency.P99))
	}
	legend(y0, 0, "#2ca02c", "p50")
	legend(y0, 1, "#d62728", "p99")

	ya := y0 + panelH
	for i := 0; i <= 5; i++ {
		t := tmax * float64(i) / 5
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%.0fs</text>`+"\n", x(t), ya+16, t)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func maxOf(vs []float64) float64 {
	m := 0.0
	for _, v := range vs {
		m = max(m, v)
	}
	return m
}

// logRange returns powers of ten around the positive values of vs (at
// least one decade apart).
func logRange(vs []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), 0
	for _, v := range vs {
		if v > 0 {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	if hi == 0 {
		return 0.1, 1
	}
	lo = math.Pow(10, math.Floor(math.Log10(lo*0.999))) // a value on a decade stays off the floor
	hi = math.Pow(10, math.Ceil(math.Log10(hi)))
	if hi <= lo {
		hi = lo * 10
	}
	return lo, hi
}

func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := 1.0
	for p*10 <= v {
		p *= 10
	}
	for p > v {
		p /= 10
	}
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// short formats an axis value: 1.5k, 20, 0.25.
func short(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.3gk", v/1e3)
	}
	return fmt.Sprintf("%.3g", v)
}

func cpuName(cpu int) string {
	if cpu < 0 {
		return "any"
	}
	return fmt.Sprint(cpu)
}
