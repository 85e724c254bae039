package server_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/sori-dev/sori/internal/config"
)

func publishVia(t *testing.T, ts *testServer, ch string, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if _, err := ts.Hub().Publish(context.Background(), ch, []byte(fmt.Sprintf(`{"n":%d}`, i)), ""); err != nil {
			t.Fatal(err)
		}
	}
}

// TestResumeAfterReconnect: a client that reconnects with (epoch, offset)
// gets exactly what it missed, in order, then live pushes, or an explicit
// recovered=false.
func TestResumeAfterReconnect(t *testing.T) {
	tests := []struct {
		name          string
		channel       string
		before        int // publications the first connection sees
		missed        int // publications while it is away
		wrongEpoch    bool
		wantRecovered bool
	}{
		{"nothing missed", "room:a", 3, 0, false, true},
		{"missed a few", "room:a", 3, 5, false, true},
		{"missed from the start", "room:a", 0, 4, false, true},
		{"missed the whole history", "small:a", 2, 5, false, true},
		{"history overflowed", "small:a", 2, 6, false, false},
		{"wrong epoch", "room:a", 2, 1, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, nil)
			first := connectAs(t, ts, "alice", "room:*", "small:*")
			sub := first.call(map[string]any{"op": "subscribe", "channel": tt.channel})
			epoch := sub["epoch"].(string)
			publishVia(t, ts, tt.channel, 1, tt.before)
			var last uint64
			for i := 0; i < tt.before; i++ {
				p := first.next()
				if num(p["offset"]) != last+1 {
					t.Fatalf("live offset %v after %d", p["offset"], last)
				}
				last = num(p["offset"])
			}
			_ = first.c.CloseNow()
			first.waitClose()

			publishVia(t, ts, tt.channel, tt.before+1, tt.missed)
			if tt.wrongEpoch {
				epoch = "not-the-epoch"
			}
			again := connectAs(t, ts, "alice", "room:*", "small:*")
			res := again.call(map[string]any{"op": "subscribe", "channel": tt.channel, "recover": true, "epoch": epoch, "offset": last})
			recovered, _ := res["recovered"].(bool)
			if recovered != tt.wantRecovered {
				t.Fatalf("recovered %v, want %v: %v", recovered, tt.wantRecovered, res)
			}
			pubs, _ := res["publications"].([]any)
			if !recovered {
				if len(pubs) != 0 {
					t.Fatalf("publications %v without recovered: a silent gap", pubs)
				}
			} else {
				if len(pubs) != tt.missed {
					t.Fatalf("%d publications recovered, want %d", len(pubs), tt.missed)
				}
				for i, p := range pubs {
					pm := p.(map[string]any)
					if num(pm["offset"]) != last+uint64(i)+1 || num(pm["data"].(map[string]any)["n"]) != last+uint64(i)+1 {
						t.Fatalf("recovered[%d] = %v, want offset %d", i, pm, last+uint64(i)+1)
					}
				}
			}
			// Live pushes continue after the recovered ones.
			top := num(res["offset"])
			if top != uint64(tt.before+tt.missed) {
				t.Fatalf("top offset %d, want %d", top, tt.before+tt.missed)
			}
			publishVia(t, ts, tt.channel, tt.before+tt.missed+1, 3)
			for i := uint64(1); i <= 3; i++ {
				p := again.next()
				for p["push"] == "leave" || p["push"] == "join" {
					// The first connection's leave may reach the server
					// after the new subscription: presence, not a gap.
					p = again.next()
				}
				if p["push"] != "pub" || num(p["offset"]) != top+i {
					t.Fatalf("live push %v, want offset %d", p, top+i)
				}
			}
		})
	}
}

// TestResumeWhilePublishing resumes repeatedly while a publisher keeps
// going: across all reconnects the client sees every offset exactly once.
func TestResumeWhilePublishing(t *testing.T) {
	ts := startServer(t, func(c *config.Config) {
		c.Namespaces = append(c.Namespaces, config.Namespace{Name: "busy", HistorySize: 1 << 20, Subscribe: "token"})
	})
	// The publisher is paced by credits the test hands out, not by the
	// clock: each round lets it publish perRound while the client is away and
	// perRound while it is back, so a reconnect misses at most 2×perRound
	// publications (under the recovery limit of 1000) however slowly either
	// side runs, and the live part always has pushes to read.
	const perRound = 100
	credits := make(chan struct{}, 2*perRound)
	grant := func() {
		for i := 0; i < perRound; i++ {
			credits <- struct{}{}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-credits:
			}
			if _, err := ts.Hub().Publish(ctx, "busy:x", []byte(fmt.Sprintf(`{"n":%d}`, i)), ""); err != nil {
				if ctx.Err() == nil {
					t.Error(err)
				}
				return
			}
		}
	}()
	defer func() { cancel(); <-done }()

	var epoch string
	var last uint64
	for round := 0; round < 5; round++ {
		grant() // published while the client is away (or, in round 0, before it subscribes)
		cl := connectAs(t, ts, "alice", "busy:*")
		cmd := map[string]any{"op": "subscribe", "channel": "busy:x"}
		if round > 0 {
			cmd["recover"], cmd["epoch"], cmd["offset"] = true, epoch, last
		}
		res := cl.call(cmd)
		if round > 0 && res["recovered"] != true {
			t.Fatalf("round %d: not recovered: %v", round, res)
		}
		epoch = res["epoch"].(string)
		if round == 0 {
			last = num(res["offset"])
		}
		pubs, _ := res["publications"].([]any)
		for _, p := range pubs {
			if off := num(p.(map[string]any)["offset"]); off != last+1 {
				t.Fatalf("round %d: recovered offset %d after %d", round, off, last)
			}
			last++
		}
		grant() // published while the client is subscribed
		for i := 0; i < 20; i++ {
			p := cl.next()
			if p["push"] != "pub" {
				continue
			}
			if off := num(p["offset"]); off != last+1 {
				t.Fatalf("round %d: live offset %d after %d", round, off, last)
			}
			last++
		}
		_ = cl.c.CloseNow()
		cl.waitClose()
	}
}
