package signal

import (
	"context"
	"testing"
)

func (r *recRoom) SetQuality(sub, pub, layer string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.qualities = append(r.qualities, sub+">"+pub+":"+layer)
	return nil
}

// TestQualityOnlyOnTheSFU: call.quality is refused in a mesh call with 123
// and with 101/117 for a bad layer, an unknown peer or oneself; on the SFU
// it reaches the media room as (subscriber, publisher, layer).
func TestQualityOnlyOnTheSFU(t *testing.T) {
	s, m, _ := newSFUService(t, 2, 4)
	ctx := context.Background()
	conns := map[string]*memConn{}
	ids := map[string]string{}
	for _, u := range []string{"ann", "bob"} {
		conns[u] = &memConn{id: "c-" + u, user: u}
		res, err := s.Join(ctx, conns[u], JoinRequest{Room: "42"})
		if err != nil {
			t.Fatal(err)
		}
		ids[u] = res.Participant
	}
	wantCode(t, s.SetQuality(conns["ann"], QualityRequest{Room: "42", Peer: ids["bob"], Layer: "low"}), 123)
	wantCode(t, s.SetQuality(conns["ann"], QualityRequest{Room: "42", Peer: ids["bob"], Layer: "medium"}), 101)
	wantCode(t, s.SetQuality(conns["ann"], QualityRequest{Room: "42", Peer: "nobody", Layer: "low"}), 117)
	wantCode(t, s.SetQuality(conns["ann"], QualityRequest{Room: "43", Peer: ids["bob"], Layer: "low"}), 117)
	wantCode(t, s.SetQuality(conns["ann"], QualityRequest{Room: "42", Peer: ids["ann"], Layer: "low"}), 101)

	conns["cat"] = &memConn{id: "c-cat", user: "cat"}
	if res, err := s.Join(ctx, conns["cat"], JoinRequest{Room: "42"}); err != nil || res.Mode != ModeSFU {
		t.Fatalf("cat: %+v %v, want an SFU join", res, err)
	}
	for _, l := range Qualities {
		if err := s.SetQuality(conns["ann"], QualityRequest{Room: "42", Peer: ids["bob"], Layer: l}); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
	}
	mr := m.rooms[0]
	mr.mu.Lock()
	defer mr.mu.Unlock()
	if len(mr.qualities) != len(Qualities) || mr.qualities[2] != ids["ann"]+">"+ids["bob"]+":mid" {
		t.Fatalf("the SFU got %v", mr.qualities)
	}
}
