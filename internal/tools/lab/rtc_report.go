package lab

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// find returns the result for mode and n, or nil.
func (r *RTCReport) find(mode string, n int) *RTCResult {
	for i := range r.Results {
		if x := &r.Results[i]; x.Mode == mode && x.Participants == n && x.Error == "" {
			return x
		}
	}
	return nil
}

func (r *RTCReport) sizes() []int {
	var ns []int
	seen := map[int]bool{}
	for _, x := range r.Results {
		if !seen[x.Participants] {
			seen[x.Participants] = true
			ns = append(ns, x.Participants)
		}
	}
	return ns
}

// WriteTable writes the report as a Markdown table: per participant uplink
// and downlink in kB/s in each mode, the SFU's figures as ratios of the
// mesh's, and the server's CPU.
func (r *RTCReport) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "| N | mesh up kB/s | mesh down kB/s | SFU up kB/s | SFU down kB/s | SFU/mesh up | SFU/mesh down | server CPU mesh | server CPU SFU | paced mesh/SFU |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|\n")
	cell := func(x *RTCResult, f func(*RTCResult) float64, format string) string {
		if x == nil {
			return "—"
		}
		return fmt.Sprintf(format, f(x))
	}
	up := func(x *RTCResult) float64 { return x.UpBytesPS / 1000 }
	down := func(x *RTCResult) float64 { return x.DownBytesPS / 1000 }
	cpu := func(x *RTCResult) float64 { return x.ServerCPU }
	for _, n := range r.sizes() {
		m, s := r.find("mesh", n), r.find("sfu", n)
		ru, rd := "—", "—"
		if m != nil && s != nil && m.UpBytesPS > 0 && m.DownBytesPS > 0 {
			ru = fmt.Sprintf("%.2f", s.UpBytesPS/m.UpBytesPS)
			rd = fmt.Sprintf("%.2f", s.DownBytesPS/m.DownBytesPS)
		}
		paced := func(x *RTCResult) float64 { return x.Paced }
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s/%s |\n", n,
			cell(m, up, "%.0f"), cell(m, down, "%.0f"), cell(s, up, "%.0f"), cell(s, down, "%.0f"), ru, rd,
			cell(m, cpu, "%.3f"), cell(s, cpu, "%.3f"), cell(m, paced, "%.2f"), cell(s, paced, "%.2f"))
	}
	for _, x := range r.Results {
		if x.Error != "" {
			fmt.Fprintf(w, "\n%s N=%d failed: %s\n", x.Mode, x.Participants, x.Error)
		}
	}
}

// WriteSVG draws uplink and downlink per participant against N, mesh and
// SFU, as one line chart.
func (r *RTCReport) WriteSVG(w io.Writer) error {
	ns := r.sizes()
	if len(ns) == 0 {
		return fmt.Errorf("lab rtc: no results to draw")
	}
	type series struct {
		name, color, dash string
		mode              string
		f                 func(*RTCResult) float64
	}
	all := []series{
		{"mesh uplink", "#b3261e", "", "mesh", func(x *RTCResult) float64 { return x.UpBytesPS }},
		{"mesh downlink", "#b3261e", "6 4", "mesh", func(x *RTCResult) float64 { return x.DownBytesPS }},
		{"SFU uplink", "#2456d6", "", "sfu", func(x *RTCResult) float64 { return x.UpBytesPS }},
		{"SFU downlink", "#2456d6", "6 4", "sfu", func(x *RTCResult) float64 { return x.DownBytesPS }},
	}
	top := 0.0
	for _, x := range r.Results {
		top = math.Max(top, math.Max(x.UpBytesPS, x.DownBytesPS))
	}
	if top <= 0 {
		top = 1
	}
	const W, H, L, R, T, B = 640, 360, 70, 150, 30, 50
	pw, ph := float64(W-L-R), float64(H-T-B)
	lo, hi := ns[0], ns[len(ns)-1]
	xOf := func(n int) float64 {
		if hi == lo {
			return L + pw/2
		}
		return L + pw*float64(n-lo)/float64(hi-lo)
	}
	yOf := func(v float64) float64 { return T + ph*(1-v/top) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/>`+"\n", W, H)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="14" font-weight="bold">Bytes per second per participant, mesh vs SFU (sori lab rtc)</text>`+"\n", L)
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		y := yOf(v)
		fmt.Fprintf(&b, `<line x1="%d" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%.0f kB/s</text>`+"\n", L, L+pw, y, y, L-6, y+4, v/1000)
	}
	for _, n := range ns {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%d</text>`+"\n", xOf(n), H-B+18, n)
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%d" text-anchor="middle">participants (N)</text>`+"\n", L+pw/2, H-12)
	for i, s := range all {
		var pts []string
		for _, n := range ns {
			if x := r.find(s.mode, n); x != nil {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", xOf(n), yOf(s.f(x))))
			}
		}
		if len(pts) > 0 {
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" stroke-dasharray="%s" points="%s"/>`+"\n", s.color, s.dash, strings.Join(pts, " "))
		}
		ly := T + 20*i
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2" stroke-dasharray="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			W-R+10, W-R+40, ly, ly, s.color, s.dash, W-R+46, ly+4, s.name)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
