package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/sori-dev/sori/internal/tools/bench"
	"github.com/sori-dev/sori/internal/tools/lab"
)

// TestToolsHelpListsEveryFlag: `sori bench --help` and `sori lab --help`
// document every flag they accept.
func TestToolsHelpListsEveryFlag(t *testing.T) {
	for _, tc := range []struct {
		cmd string
		fs  *flag.FlagSet
	}{
		{"bench", func() *flag.FlagSet { fs, _, _ := benchFlags(&bench.Config{}, &bytes.Buffer{}); return fs }()},
		{"lab", func() *flag.FlagSet { fs, _, _, _ := labFlags(&lab.Config{}, &bytes.Buffer{}); return fs }()},
	} {
		var out bytes.Buffer
		err := run([]string{tc.cmd, "--help"}, &out, &out)
		if !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("%s --help: %v", tc.cmd, err)
		}
		n := 0
		tc.fs.VisitAll(func(f *flag.Flag) {
			n++
			if !strings.Contains(out.String(), "  -"+f.Name+" ") && !strings.Contains(out.String(), "  -"+f.Name+"\n") {
				t.Errorf("%s --help does not document -%s", tc.cmd, f.Name)
			}
			if f.Usage == "" {
				t.Errorf("%s -%s has no usage text", tc.cmd, f.Name)
			}
		})
		if n < 8 {
			t.Fatalf("%s: only %d flags", tc.cmd, n)
		}
	}
	var out bytes.Buffer
	_ = run([]string{"help"}, &out, &out)
	if !strings.Contains(out.String(), "sori bench") || !strings.Contains(out.String(), "sori lab") {
		t.Fatalf("usage does not list bench and lab:\n%s", out.String())
	}
}
