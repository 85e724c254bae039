package bench_test

import (
	"bytes"
	"encoding/xml"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sori-dev/sori/internal/tools/bench"
)

type svgDoc struct {
	Width     float64   `xml:"width,attr"`
	Texts     []svgText `xml:"text"`
	Polylines []struct {
		Stroke string `xml:"stroke,attr"`
		Points string `xml:"points,attr"`
	} `xml:"polyline"`
}

type svgText struct {
	X        float64 `xml:"x,attr"`
	Y        float64 `xml:"y,attr"`
	FontSize string  `xml:"font-size,attr"`
	Text     string  `xml:",chardata"`
}

func ys(t *testing.T, points string) (lo, hi float64) {
	lo, hi = 1e9, -1e9
	for _, p := range strings.Fields(points) {
		_, yv, _ := strings.Cut(p, ",")
		y, err := strconv.ParseFloat(yv, 64)
		if err != nil {
			t.Fatal(err)
		}
		lo, hi = min(lo, y), max(hi, y)
	}
	return lo, hi
}

// TestBenchChartReadable: connections get their own axis (on the
// deliveries axis 500 connections under 50,000 deliveries/s drew a flat
// line), p50 stands clear of p99 (log axis), and no text runs past the edge.
func TestBenchChartReadable(t *testing.T) {
	rep := &bench.Report{}
	rep.Config.Conns, rep.Config.Pattern, rep.Config.Rate, rep.Config.Size = 500, "rooms", 100, 128
	rep.DeliveriesSec = 50000
	rep.Latency.P50, rep.Latency.P99, rep.Latency.Max = 1, 150, 400
	for i := range 5 {
		rep.Series = append(rep.Series, bench.Point{T: float64(i + 1), Conns: int64(100 * (i + 1)), DeliveriesSec: 50000, P50: 1, P99: 100})
	}
	var out bytes.Buffer
	if err := rep.WriteSVG(&out); err != nil {
		t.Fatal(err)
	}
	var doc svgDoc
	if err := xml.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	lines := map[string][2]float64{}
	for _, p := range doc.Polylines {
		lo, hi := ys(t, p.Points)
		lines[p.Stroke] = [2]float64{lo, hi}
	}
	deliveries, conns, p50, p99 := lines["#1f77b4"], lines["#999"], lines["#2ca02c"], lines["#d62728"]
	if conns[0] > deliveries[0]+20 {
		t.Errorf("connections peak at y=%.0f, far below deliveries at y=%.0f: not on their own axis", conns[0], deliveries[0])
	}
	bottom := 0.0 // of the latency panel: the time axis labels sit 16 below it
	for _, tx := range doc.Texts {
		if tx.Text == "0s" {
			bottom = tx.Y - 16
		}
	}
	// p50 = 1 ms under p99 = 100 ms: on a linear axis p50 is 1% of p99's
	// height, a line on the floor.
	if h50, h99 := bottom-p50[1], bottom-p99[0]; h50 < 0.2*h99 {
		t.Errorf("p50 drawn %.0f px above the axis, p99 %.0f px: p50 is squashed", h50, h99)
	}
	for _, tx := range doc.Texts {
		size := 12.0
		if tx.FontSize != "" {
			size, _ = strconv.ParseFloat(tx.FontSize, 64)
		}
		// 0.55 em per character is a sans-serif average.
		if end := tx.X + float64(utf8.RuneCountInString(tx.Text))*size*0.55; end > doc.Width {
			t.Errorf("text %q ends at x≈%.0f, past the width %.0f", tx.Text, end, doc.Width)
		}
	}
}
