package lab

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

// The report: a Markdown row per N with the SFU's figures as ratios of the
// mesh's, "—" where a mode has no row, and an SVG with the four series.
func TestRTCReportTableAndChart(t *testing.T) {
	rep := &RTCReport{VideoBitrate: 500_000, Window: "5s", Results: []RTCResult{
		{Mode: "mesh", Participants: 2, UpBytesPS: 60_000, DownBytesPS: 60_000, ServerCPU: 0.01},
		{Mode: "mesh", Participants: 3, UpBytesPS: 120_000, DownBytesPS: 120_000, ServerCPU: 0.01},
		{Mode: "sfu", Participants: 3, UpBytesPS: 60_000, DownBytesPS: 126_000, ServerCPU: 0.1},
		{Mode: "sfu", Participants: 4, Error: "boom"},
	}}
	var b bytes.Buffer
	rep.WriteTable(&b)
	out := b.String()
	for _, want := range []string{"| 2 | 60 | 60 | — | — | — | — | 0.010 | — | 0.00/— |", "| 3 | 120 | 120 | 60 | 126 | 0.50 | 1.05 | 0.010 | 0.100 | 0.00/0.00 |", "sfu N=4 failed: boom"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	if err := rep.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	if svg := b.String(); strings.Count(svg, "<polyline") != 4 || !strings.Contains(svg, "SFU uplink") {
		t.Errorf("chart: want four series:\n%s", svg)
	}
	if err := (&RTCReport{}).WriteSVG(&b); err == nil {
		t.Error("an empty report drew a chart")
	}
}

// A real run, N = 2…3, with pion peers through child servers: in a mesh each
// participant's uplink grows with the others (about twice at 3 than at 2),
// on the SFU it stays one stream's worth, and downlink is alike in both.
// Byte ratios from fixed-rate senders, with wide margins: not timing.
func TestRTCLabMeshVsSFU(t *testing.T) {
	if os.Getenv("SORI_TEST_SLOW") != "1" {
		t.Skip("set SORI_TEST_SLOW=1 (builds sori and runs two child servers, ~30 s)")
	}
	bin := filepath.Join(t.TempDir(), "sori")
	build := exec.Command("go", "build", "-o", bin, "../../../cmd/sori")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := RunRTC(ctx, RTCConfig{Min: 2, Max: 3, Window: 2 * time.Second, Warmup: time.Second, ServerCommand: []string{bin, "serve"}})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	rep.WriteTable(&b)
	t.Log("\n" + b.String())
	m2, m3, s3 := rep.find("mesh", 2), rep.find("mesh", 3), rep.find("sfu", 3)
	for _, x := range []*RTCResult{m2, m3, s3} {
		if x == nil {
			t.Fatalf("missing results:\n%s", b.String())
		}
	}
	// Bytes per unit of video the senders actually wrote (Paced): a loaded
	// machine starves the senders of larger rooms (paced 0.76 at N=3 once in
	// CI), which changes the rates but not the topology this test checks.
	up := func(x *RTCResult) float64 { return x.UpBytesPS / max(x.Paced, 0.01) }
	down := func(x *RTCResult) float64 { return x.DownBytesPS / max(x.Paced, 0.01) }
	if r := up(m3) / up(m2); r < 1.6 || r > 2.4 {
		t.Errorf("mesh uplink 3 vs 2 participants: ×%.2f, want about 2", r)
	}
	if r := up(s3) / up(m3); r > 0.7 {
		t.Errorf("SFU uplink at N=3 is %.2f of the mesh's, want about 1/2", r)
	}
	if r := down(s3) / down(m3); r < 0.8 || r > 1.25 {
		t.Errorf("SFU downlink at N=3 is %.2f of the mesh's, want about 1", r)
	}
}

// An offer made while its peer connection closes (enterSFU, or the end of a
// run) must leave no pion goroutine behind. pion's SetLocalDescription
// checks for a closed connection on entry and creates the ICE agent at its
// end, so a Close in between used to leave the agent's task loop running
// (goleak caught it once in CI). Here the close starts from pion's own
// signaling-state event, which it fires (on a goroutine of its own) in the
// middle of SetLocalDescription; rtcConn makes the close wait for the offer.
// (With a close that does not wait, 1 of 3 runs here failed: the offer
// broke off, or goleak found the task loop.)
func TestOfferRacingCloseLeavesNoAgent(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p, err := newRTCMedia(rtcUser{name: "racer"})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		pc, err := p.api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			t.Fatal(err)
		}
		c := &rtcConn{pc: pc, queue: make(chan map[string]any, 1), done: make(chan struct{})}
		closed := make(chan struct{})
		pc.OnSignalingStateChange(func(s webrtc.SignalingState) {
			if s == webrtc.SignalingStateHaveLocalOffer {
				c.close()
				close(closed)
			}
		})
		if _, ok := p.offer(c); !ok {
			t.Fatal("the offer failed: the close did not wait for it")
		}
		<-closed
		if _, ok := p.offer(c); ok {
			t.Fatal("an offer was made on a closed connection")
		}
	}
}
