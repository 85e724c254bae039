package lab_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sori-dev/sori/internal/server"
	"github.com/sori-dev/sori/internal/server/servertest"
	"github.com/sori-dev/sori/internal/tools/lab"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}

// A short run over every transport against an in-process server: the shape
// of the report and the numbers' sanity, not their speed.
func TestShortLabRun(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.APIKeys = []string{"lab-key"}
	url := servertest.Start(t, cfg)

	const readers, messages = 3, 20
	rep, err := lab.Run(context.Background(), lab.Config{
		URL: url, APIKey: "lab-key", Readers: readers, Messages: messages, Size: 200,
		Rate: 100, PollInterval: 50 * time.Millisecond, Drain: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != len(lab.AllTransports) {
		t.Fatalf("%d results, want %d", len(rep.Results), len(lab.AllTransports))
	}
	by := map[string]lab.Result{}
	for i, r := range rep.Results {
		if r.Transport != lab.AllTransports[i] || r.Error != "" {
			t.Fatalf("result %d: %+v", i, r)
		}
		if r.Delivered != readers*messages || r.Lost != 0 {
			t.Errorf("%s delivered %d lost %d, want %d and 0", r.Transport, r.Delivered, r.Lost, readers*messages)
		}
		if !(r.BytesUpPerMsg > 0 && r.BytesDownPerMsg > 0 && r.P50 > 0 && r.P50 <= r.P99 && r.P99 <= r.Max) {
			t.Errorf("%s: implausible numbers %+v", r.Transport, r)
		}
		by[r.Transport] = r
	}
	// Every delivered message carries at least its data down the wire.
	for _, r := range rep.Results {
		if r.Transport != lab.Deflate && r.BytesDownPerMsg < 200 {
			t.Errorf("%s: %.0f B down per message, below the 200 B of data", r.Transport, r.BytesDownPerMsg)
		}
	}
	ws, lp, sse, def := by[lab.WebSocket], by[lab.LongPoll], by[lab.SSE], by[lab.Deflate]
	if !(ws.BytesPerMsg < lp.BytesPerMsg && ws.BytesPerMsg < sse.BytesPerMsg && def.BytesPerMsg < ws.BytesPerMsg) {
		t.Errorf("bytes/msg: websocket %.0f, deflate %.0f, sse %.0f, long-poll %.0f: want deflate < websocket < sse, long-poll",
			ws.BytesPerMsg, def.BytesPerMsg, sse.BytesPerMsg, lp.BytesPerMsg)
	}
	if ws.RequestsPerMsg != 0 || lp.RequestsPerMsg < 1 {
		t.Errorf("requests/msg: websocket %.3f (want 0 after the handshake), long-poll %.3f (want ≥ 1: a poll per message per reader)",
			ws.RequestsPerMsg, lp.RequestsPerMsg)
	}

	var table, svg bytes.Buffer
	rep.WriteTable(&table)
	for _, tr := range lab.AllTransports {
		if !strings.Contains(table.String(), tr) {
			t.Errorf("table lacks %s:\n%s", tr, table.String())
		}
	}
	if err := rep.WriteSVG(&svg); err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(svg.Bytes(), new(struct{})); err != nil || strings.Count(svg.String(), "<rect") < 1+4*len(lab.AllTransports) {
		t.Fatalf("chart: %v, %d rects", err, strings.Count(svg.String(), "<rect"))
	}
	var back lab.Report
	b, _ := json.Marshal(rep)
	if err := json.Unmarshal(b, &back); err != nil || len(back.Results) != len(rep.Results) {
		t.Fatalf("JSON round trip: %v", err)
	}
}

func TestUnknownTransportIsRefused(t *testing.T) {
	_, err := lab.Run(context.Background(), lab.Config{URL: "http://127.0.0.1:1", Transports: []string{"pigeon"}})
	if err == nil || !strings.Contains(err.Error(), "pigeon") {
		t.Fatalf("err %v", err)
	}
}

// TestChildThatExitsEarlyIsReported: a child server that dies before it
// listens (a bad flag, a taken port) is reported as such, with its stderr,
// instead of as a silent timeout.
func TestChildThatExitsEarlyIsReported(t *testing.T) {
	_, err := lab.Run(context.Background(), lab.Config{
		ServerCommand: []string{"sh", "-c", `echo "flag provided but not defined: -bogus" >&2; exit 2`, "sh"},
		Transports:    []string{lab.WebSocket},
	})
	if err == nil || !strings.Contains(err.Error(), "exited") || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("Run: %v, want the child's exit and its last stderr line", err)
	}
}

// TestTableOfAnInterruptedRun: a transport that failed (an interrupted run)
// keeps the table's columns: its row says it failed, and the reason follows
// the table instead of stretching a column to its length.
func TestTableOfAnInterruptedRun(t *testing.T) {
	reason := `lab: POST /http/send?session=abc&ack=101: Post "http://127.0.0.1:1/http/send?session=abc&ack=101": interrupt signal received`
	rep := &lab.Report{Readers: 3, Messages: 10, Size: 256, Rate: 20, PollInterval: "500ms", CPUScope: "the child",
		Results: []lab.Result{
			{Transport: lab.WebSocket, Delivered: 30, BytesPerMsg: 300, P50: 1, P99: 2, Max: 3},
			{Transport: lab.ShortPoll, Error: reason + "\n\tdetail"},
		}}
	var out bytes.Buffer
	rep.WriteTable(&out)
	lines := strings.Split(out.String(), "\n")
	header, ws, sp := lines[1], lines[2], lines[3]
	if !strings.HasPrefix(strings.TrimSpace(header), "transport ") || len(header) > 160 {
		t.Errorf("header stretched to %d columns:\n%s", len(header), out.String())
	}
	if f := strings.Fields(ws); len(f) < 2 || f[0] != lab.WebSocket || f[1] != "30" {
		t.Errorf("websocket row: %q", ws)
	}
	if f := strings.Fields(sp); len(f) != 2 || f[0] != lab.ShortPoll || f[1] != "failed*" {
		t.Errorf("failed row: %q", sp)
	}
	if !strings.Contains(out.String(), "* "+lab.ShortPoll+": "+reason+" detail\n") {
		t.Errorf("the reason is not below the table:\n%s", out.String())
	}
}

// TestLabChartLogScale: next to short polling, a push transport's bar is
// still readable (on the old linear axis 300 B beside 60,000 B was 0.5% of
// the width, a sliver).
func TestLabChartLogScale(t *testing.T) {
	rep := &lab.Report{Readers: 3, Messages: 10, Size: 256, Rate: 20, PollInterval: "500ms", CPUScope: "the child",
		Results: []lab.Result{
			{Transport: lab.ShortPoll, BytesPerMsg: 60000, RequestsPerMsg: 20, P50: 250, P99: 500, ServerCPUPerMsg: 900},
			{Transport: lab.WebSocket, BytesPerMsg: 300, RequestsPerMsg: 0.01, P50: 1, P99: 2, ServerCPUPerMsg: 9},
		}}
	var out bytes.Buffer
	if err := rep.WriteSVG(&out); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Rects []struct {
			Width string `xml:"width,attr"`
		} `xml:"rect"`
	}
	if err := xml.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	var bars []float64                // short-poll, websocket for each of the four panels
	for _, r := range doc.Rects[1:] { // the first is the background
		w, err := strconv.ParseFloat(r.Width, 64)
		if err != nil {
			t.Fatal(err)
		}
		bars = append(bars, w)
	}
	if len(bars) != 8 {
		t.Fatalf("%d bars, want 8", len(bars))
	}
	for k := 0; k < 8; k += 2 {
		if sp, ws := bars[k], bars[k+1]; ws < 0.15*sp || ws >= sp {
			t.Errorf("panel %d: websocket bar %.0f px beside short-poll %.0f px", k/2, ws, sp)
		}
	}
}
