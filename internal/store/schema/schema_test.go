package schema

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoadOrdersAndChecksVersions(t *testing.T) {
	ms, err := Load(fstest.MapFS{
		"m/0002_b.sql": {Data: []byte("B")},
		"m/0001_a.sql": {Data: []byte("A")},
	}, "m")
	if err != nil || len(ms) != 2 || ms[0].Name != "0001_a.sql" || ms[0].SQL != "A" || ms[1].Version != 2 {
		t.Fatalf("Load = %+v, %v", ms, err)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"gap":       {"m/0001_a.sql": {}, "m/0003_c.sql": {}},
		"repeat":    {"m/0001_a.sql": {}, "m/0001_b.sql": {}},
		"no number": {"m/first.sql": {}},
		"zero":      {"m/0000_a.sql": {}},
	} {
		if ms, err := Load(fsys, "m"); err == nil {
			t.Errorf("%s: Load = %+v, want an error", name, ms)
		}
	}
}

func TestPending(t *testing.T) {
	ms := []Migration{{Version: 1}, {Version: 2}, {Version: 3}}
	for current, want := range []int{3, 2, 1, 0} {
		if p, err := Pending(ms, current); err != nil || len(p) != want || want > 0 && p[0].Version != current+1 {
			t.Errorf("Pending(%d) = %+v, %v; want %d from version %d", current, p, err, want, current+1)
		}
	}
	if _, err := Pending(ms, 4); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("a newer database: %v, want refused", err)
	}
}
