package clustertest

import (
	"strings"
	"testing"
)

// The checker finds each kind of violation in a made-up history, and none
// in a clean one: a check that cannot fail would prove nothing.
func TestCheckerFindsViolations(t *testing.T) {
	clean := func() *History {
		h := NewHistory()
		for i, p := range []string{"a", "b", "c"} {
			h.Acked(uint64(i+1), p)
		}
		for _, r := range []string{"r1", "r2"} {
			h.Subscribed(r, "E", false, false)
			for i, p := range []string{"a", "b", "c"} {
				h.Delivered(r, uint64(i+1), p)
			}
		}
		return h
	}
	if errs := clean().Check(); len(errs) != 0 {
		t.Fatalf("clean history: %v", errs)
	}
	for name, c := range map[string]struct {
		mutate func(h *History)
		want   string
	}{
		"lost acknowledged": {func(h *History) { h.Acked(4, "d") }, "acknowledged offset 4"},
		"duplicate":         {func(h *History) { h.Delivered("r1", 3, "c") }, "delivered again"},
		"hole":              {func(h *History) { h.Delivered("r1", 5, "e") }, "a hole"},
		"disagree": {func(h *History) {
			h.Delivered("r1", 4, "x")
			h.Delivered("r2", 4, "y")
		}, "disagree at offset 4"},
		"wrong payload at acked offset": {func(h *History) {
			h.Acked(4, "d")
			h.Delivered("r1", 4, "z")
			h.Delivered("r2", 4, "z")
		}, "acknowledged \"d\""},
		"payload twice": {func(h *History) {
			h.Delivered("r1", 4, "a")
			h.Delivered("r2", 4, "a")
		}, "at offsets 1 and 4"},
		"epoch change":  {func(h *History) { h.Subscribed("r1", "F", true, true) }, "epoch changed"},
		"not recovered": {func(h *History) { h.Subscribed("r2", "E", false, true) }, "recovered:false"},
	} {
		h := clean()
		c.mutate(h)
		errs := strings.Join(h.Check(), "\n")
		if !strings.Contains(errs, c.want) {
			t.Errorf("%s: findings %q lack %q", name, errs, c.want)
		}
	}
}
