package layers

import (
	"fmt"
	"go/build"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const module = "github.com/sori-dev/sori"

// words maps the names a "must never import" sentence uses to the module
// packages they stand for; a name covers the package and its subpackages.
var words = map[string]string{
	"accounts":   "internal/accounts",
	"auth":       "internal/auth",
	"chat":       "internal/chat",
	"cluster":    "internal/cluster",
	"config":     "internal/config",
	"hub":        "internal/hub",
	"protocol":   "internal/protocol",
	"server":     "internal/server",
	"serverapi":  "internal/serverapi",
	"session":    "internal/session",
	"sfu":        "internal/rtc/sfu",
	"signal":     "internal/rtc/signal",
	"store":      "internal/store",
	"transport":  "internal/transport",
	"transports": "internal/transport",
	"turn":       "internal/rtc/turn",
}

// exempt packages state no rule: the composition root imports everything.
var exempt = map[string]string{
	"internal/server": "the composition root: it wires every package",
}

type pkg struct {
	path    string // relative to the module
	imports []string
	rule    string // the "must never import …" clause, "" if none
}

// otherRE matches the rules that forbid every other module package ("any
// other Sori package but protocol", "anything of Sori but hub").
var otherRE = regexp.MustCompile(`other sori package|another internal package|other internal package|anything of sori`)

var ruleRE = regexp.MustCompile(`(?is)must never import\s+(.*?)(?:[:;]|\.\s|\.$|$)`)

// TestLayering fails when a package imports one that its doc comment says it
// must never import, or when an internal package states no rule. Rules are
// about a package's own imports: ws may reach the hub through session, but
// must not import it.
func TestLayering(t *testing.T) {
	for _, v := range violations(t, load(t)) {
		t.Error(v)
	}
}

// TestLayeringCatchesViolations shows the check can fail: a made-up graph
// breaking each kind of rule yields each kind of finding.
func TestLayeringCatchesViolations(t *testing.T) {
	pkgs := []*pkg{
		{path: "internal/hub", imports: []string{"internal/protocol", "internal/session"}, rule: "transport, session or server"},
		{path: "internal/protocol", imports: []string{"internal/hub"}, rule: "any other Sori package"},
		{path: "internal/httpx", imports: []string{"internal/protocol"}, rule: "any other Sori package but protocol"},
		{path: "internal/session", imports: []string{"internal/hub"}},
		{path: "internal/server", imports: []string{"internal/hub", "internal/session"}},
	}
	got := strings.Join(violations(t, pkgs), "\n")
	for _, want := range []string{
		"internal/hub imports internal/session",
		"internal/protocol imports internal/hub",
		"internal/session: its doc comment states no",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("findings lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "internal/httpx") || strings.Contains(got, "internal/server") {
		t.Errorf("findings blame a package that keeps its rule:\n%s", got)
	}
}

// violations lists every import that breaks its package's rule and every
// internal package without a rule.
func violations(t *testing.T, pkgs []*pkg) []string {
	var out []string
	for _, p := range pkgs {
		if !strings.HasPrefix(p.path, "internal/") {
			continue
		}
		if p.rule == "" {
			if _, ok := exempt[p.path]; !ok {
				out = append(out, fmt.Sprintf("%s: its doc comment states no \"must never import\" rule", p.path))
			}
			continue
		}
		forbidden := parseRule(t, p, pkgs)
		for _, dep := range p.imports {
			for _, f := range forbidden {
				if dep == f || strings.HasPrefix(dep, f+"/") {
					out = append(out, fmt.Sprintf("%s imports %s, but its doc says it must never import %s", p.path, dep, p.rule))
				}
			}
		}
	}
	return out
}

// parseRule turns a rule into the package paths it forbids. A rule that names
// nothing this test knows is an error, so that a rule cannot silently mean
// nothing.
func parseRule(t *testing.T, p *pkg, all []*pkg) []string {
	rule := strings.ToLower(p.rule)
	var out []string
	if otherRE.MatchString(rule) {
		allowed := map[string]bool{p.path: true}
		if i := strings.Index(rule, " but "); i >= 0 {
			for _, w := range strings.FieldsFunc(rule[i:], notWord) {
				if path, ok := words[w]; ok {
					allowed[path] = true
				}
			}
		}
		for _, q := range all {
			if !allowed[q.path] && !strings.HasPrefix(p.path, q.path+"/") {
				out = append(out, q.path)
			}
		}
		return out
	}
	for _, w := range strings.FieldsFunc(rule, notWord) {
		if path, ok := words[w]; ok && path != p.path {
			out = append(out, path)
		}
	}
	if len(out) == 0 {
		t.Errorf("%s: rule %q names no package this test knows (see words in layers_test.go)", p.path, p.rule)
	}
	return out
}

func notWord(r rune) bool { return !(r >= 'a' && r <= 'z' || r == '/') }

// load lists the module's packages with their non-test imports inside the
// module and their package doc's rule.
func load(t *testing.T) []*pkg {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{.Dir}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []*pkg
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		importPath, dir, _ := strings.Cut(line, "\t")
		bp, err := build.ImportDir(dir, 0)
		if err != nil {
			t.Fatalf("%s: %v", importPath, err)
		}
		p := &pkg{path: strings.TrimPrefix(strings.TrimPrefix(importPath, module), "/")}
		for _, imp := range bp.Imports {
			if strings.HasPrefix(imp, module+"/") {
				p.imports = append(p.imports, strings.TrimPrefix(imp, module+"/"))
			}
		}
		p.rule = docRule(t, dir, bp.GoFiles)
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 20 {
		t.Fatalf("found only %d packages; the listing is broken", len(pkgs))
	}
	return pkgs
}

// docRule returns the "must never import" clause of the package doc comment
// in any of the package's files.
func docRule(t *testing.T, dir string, files []string) string {
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if f.Doc == nil {
			continue
		}
		if m := ruleRE.FindStringSubmatch(strings.Join(strings.Fields(f.Doc.Text()), " ")); m != nil {
			return strings.TrimSpace(m[1])
		}
	}
	return ""
}
