package lab

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// WriteTable prints the results as an aligned table.
func (rep *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "sori lab: %d readers, %d messages of %d B at %.0f/s, short-poll interval %s; server: %s\n",
		rep.Readers, rep.Messages, rep.Size, rep.Rate, rep.PollInterval, rep.Server)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "transport\tdelivered\tlost\tB/msg\tB up/msg\tB down/msg\treq/msg\tp50 ms\tp99 ms\tmax ms\tCPU µs/msg\t")
	var failed []Result
	for _, r := range rep.Results {
		if r.Error != "" {
			// The reason goes below the table: in a cell it would widen a
			// column of numbers (or, with a tab or newline in it, shift cells).
			fmt.Fprintf(tw, "%s\t%s\t\t\t\t\t\t\t\t\t\t\n", r.Transport, "failed*")
			failed = append(failed, r)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.0f\t%.0f\t%.3f\t%.2f\t%.2f\t%.2f\t%.1f\t\n", r.Transport, r.Delivered, r.Lost,
			r.BytesPerMsg, r.BytesUpPerMsg, r.BytesDownPerMsg, r.RequestsPerMsg, r.P50, r.P99, r.Max, r.ServerCPUPerMsg)
	}
	_ = tw.Flush()
	for _, r := range failed {
		fmt.Fprintf(w, "* %s: %s\n", r.Transport, strings.Join(strings.Fields(r.Error), " "))
	}
	fmt.Fprintf(w, "CPU measures %s.\n", rep.CPUScope)
}

// WriteSVG draws four bar panels (bytes, requests, latency, CPU per
// delivered message), one bar per transport, each labelled with its value,
// so the cost of each transport reads at a glance. Bars are on a log scale:
// short polling costs tens to hundreds of times what a push transport does,
// and on a linear axis every push transport was a sliver. Hand-written SVG.
func (rep *Report) WriteSVG(w io.Writer) error {
	type metric struct {
		title string
		unit  string
		val   func(Result) float64
	}
	metrics := []metric{
		{"bytes on the wire per delivered message (up + down, headers included)", "B", func(r Result) float64 { return r.BytesPerMsg }},
		{"HTTP requests per delivered message", "", func(r Result) float64 { return r.RequestsPerMsg }},
		{"delivery latency p50 (bar) and p99 (tick), ms", "ms", func(r Result) float64 { return r.P50 }},
		{"server CPU per delivered message, µs", "µs", func(r Result) float64 { return r.ServerCPUPerMsg }},
	}
	colors := map[string]string{ShortPoll: "#d62728", LongPoll: "#ff7f0e", SSE: "#9467bd", WebSocket: "#1f77b4", Deflate: "#2ca02c"}
	const (
		width, labelW, right = 820, 150, 110
		barH, barGap, top    = 18, 6, 50
	)
	n := len(rep.Results)
	panelH := 30 + n*(barH+barGap)
	height := top + len(metrics)*panelH + 30
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	fmt.Fprintf(&b, `<text x="10" y="22" font-size="15" font-weight="bold">sori lab: %d readers × %d messages of %d B at %.0f/s (short-poll every %s)</text>`+"\n",
		rep.Readers, rep.Messages, rep.Size, rep.Rate, rep.PollInterval)
	fmt.Fprintf(&b, `<text x="10" y="40" fill="#555">shorter bars are cheaper (log scale: each grid line is ×10); server CPU: %s</text>`+"\n", escape(rep.CPUScope))
	for k, m := range metrics {
		y0 := top + k*panelH
		fmt.Fprintf(&b, `<text x="10" y="%d" font-weight="bold">%s</text>`+"\n", y0+16, escape(m.title))
		var vals []float64
		for _, r := range rep.Results {
			vals = append(vals, m.val(r))
			if k == 2 {
				vals = append(vals, r.P99)
			}
		}
		lo, hi := decades(vals)
		span := float64(width - labelW - right)
		// length is a bar's length for v: 0 at lo (a decade under the
		// smallest value, so every bar shows), span at hi.
		length := func(v float64) float64 {
			if v <= lo {
				return 0
			}
			return span * math.Log10(v/lo) / math.Log10(hi/lo)
		}
		for g := lo * 10; g < hi*1.0001; g *= 10 {
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#ddd"/>`+"\n",
				float64(labelW)+length(g), float64(labelW)+length(g), y0+22, y0+panelH-4)
		}
		for i, r := range rep.Results {
			y := y0 + 26 + i*(barH+barGap)
			v := m.val(r)
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelW-8, y+13, r.Transport)
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", labelW, y, length(v), barH, colors[r.Transport])
			label := fmt.Sprintf("%.3g %s", v, m.unit)
			if k == 2 {
				fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="black" stroke-width="2"/>`+"\n",
					float64(labelW)+length(r.P99), float64(labelW)+length(r.P99), y-2, y+barH+2)
				label = fmt.Sprintf("%.3g / %.3g ms", r.P50, r.P99)
				v = max(v, r.P99)
			}
			if r.Error != "" {
				label = "error"
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s</text>`+"\n", float64(labelW)+length(v)+6, y+13, label)
		}
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// decades returns the powers of ten a log axis for vs spans: from a decade
// under the smallest positive value to the one at or over the largest.
func decades(vs []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), 0
	for _, v := range vs {
		if v > 0 {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	if hi == 0 {
		return 0.1, 1
	}
	lo = math.Pow(10, math.Floor(math.Log10(lo))-1)
	hi = math.Pow(10, math.Ceil(math.Log10(hi)))
	return lo, hi
}

func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
