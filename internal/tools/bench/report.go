package bench

import (
	"fmt"
	"io"
	"strings"
)

// WriteText prints the report as a short human-readable summary.
func (rep *Report) WriteText(w io.Writer) {
	c := rep.Config
	fmt.Fprintf(w, "sori bench: %s, pattern %s, %d conns (room size %d), %.0f pubs/s of %d B for %s\n",
		c.URL, c.Pattern, c.Conns, c.RoomSize, c.Rate, c.Size, c.Duration)
	fmt.Fprintf(w, "  connected     %d in %.1fs\n", rep.Connected, rep.RampSeconds)
	fmt.Fprintf(w, "  published     %d\n", rep.Published)
	fmt.Fprintf(w, "  delivered     %d of %d expected (%.0f/s)\n", rep.Delivered, rep.Expected, rep.DeliveriesSec)
	l := rep.Latency
	fmt.Fprintf(w, "  latency ms    p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n", l.P50, l.P90, l.P99, l.P999, l.Max)
	fmt.Fprintf(w, "  errors        %d  disconnects %d", rep.Errors, rep.Disconnects)
	if rep.FirstError != "" {
		fmt.Fprintf(w, "  (first: %s)", rep.FirstError)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  server        RSS %.1f MiB (%.1f before publishing), CPU %.2fs = %.2f µs/delivery\n",
		rep.ServerRSS/(1<<20), rep.ServerRSSStart/(1<<20), rep.ServerCPU, rep.ServerCPUPerDel)
	for _, f := range rep.Failed {
		fmt.Fprintf(w, "  FAILED        %s\n", f)
	}
}

// WriteSVG draws the time series: deliveries per second above, latency p50
// and p99 below, on a shared time axis. Hand-written SVG, no dependencies.
func (rep *Report) WriteSVG(w io.Writer) error {
	const (
		width, left, right = 760, 70, 20
		panelH, gap, top   = 170, 50, 40
	)
	height := top + 2*panelH + gap + 40
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	c := rep.Config
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">sori bench: %d conns, %s, %.0f pubs/s × %d B — %.0f deliveries/s, p99 %.2f ms</text>`+"\n",
		left, c.Conns, c.Pattern, c.Rate, c.Size, rep.DeliveriesSec, rep.Latency.P99)
	tmax := 1.0
	for _, p := range rep.Series {
		tmax = max(tmax, p.T)
	}
	x := func(t float64) float64 { return left + t/tmax*float64(width-left-right) }
	panel := func(y0 int, title string, series []struct {
		name, color string
		vals        []float64
	}) {
		vmax := 0.0
		for _, s := range series {
			for _, v := range s.vals {
				vmax = max(vmax, v)
			}
		}
		vmax = niceCeil(vmax)
		y := func(v float64) float64 { return float64(y0+panelH) - v/vmax*panelH }
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", left, y0-8, title)
		for i := 0; i <= 4; i++ {
			v := vmax * float64(i) / 4
			fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
				left, width-right, y(v), y(v), left-6, y(v)+4, short(v))
		}
		for k, s := range series {
			var pts []string
			for i, p := range rep.Series {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.T), y(s.vals[i])))
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", s.color, strings.Join(pts, " "))
			fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s">%s</text>`+"\n", width-right-120, y0+14+16*k, s.color, s.name)
		}
	}
	col := func(f func(Point) float64) []float64 {
		out := make([]float64, len(rep.Series))
		for i, p := range rep.Series {
			out[i] = f(p)
		}
		return out
	}
	type s = struct {
		name, color string
		vals        []float64
	}
	panel(top+20, "deliveries per second (and open connections)", []s{
		{"deliveries/s", "#1f77b4", col(func(p Point) float64 { return p.DeliveriesSec })},
		{"connections", "#999", col(func(p Point) float64 { return float64(p.Conns) })},
	})
	panel(top+20+panelH+gap, "delivery latency, ms (per interval)", []s{
		{"p50", "#2ca02c", col(func(p Point) float64 { return p.P50 })},
		{"p99", "#d62728", col(func(p Point) float64 { return p.P99 })},
	})
	ya := top + 20 + 2*panelH + gap
	for i := 0; i <= 5; i++ {
		t := tmax * float64(i) / 5
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%.0fs</text>`+"\n", x(t), ya+16, t)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
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
