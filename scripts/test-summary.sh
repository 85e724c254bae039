#!/usr/bin/env bash
# Prints a compact list of what failed in scripts/test.sh's lanes, so that the
# last lines of a CI log name the failures even when the log is kept only as
# its tail:
#
#   bash scripts/test-summary.sh ROOT go=GO.LOG node=NODE.LOG
#
# Each LOG is a lane's raw output (without the "[lane] " prefix). ROOT is the
# repository directory, cut from paths so they read as in the tree. What it
# finds:
#   go:   every package that printed "FAIL\t<pkg>" with the tests it failed
#         ("--- FAIL:" lines, subtests as Test/sub), "[race]" when the race
#         detector fired, the first "panic:" line (and the tests still running
#         at a -timeout), the first compile error of a build failure, and the
#         file a fuzz target wrote its failing input to;
#   node: every "not ok" of node --test's TAP output, as npm dir, test file and
#         line, the test's name (parents > subtest) and the first line of its
#         error; a parent that failed only because a subtest did is left out;
#   both: the lane's "FAILED: ..." step lines when nothing more specific was
#         found, and the first diagnostics of the static checks.
# At most $SORI_SUMMARY_LINES (default 15) lines, each cut at 240 characters;
# "search the log" names the strings to look for when there are more.
#
#   bash scripts/test-summary.sh --self-test
#
# runs a throwaway Go module and node test file that fail in each of those
# ways and checks that the summary names every one (CI runs it in the static
# checks, so the summary cannot quietly stop working).
set -euo pipefail

summarize_lane() { # LANE ROOT LOG
  awk -v lane="$1" -v root="$2" '
    function rel(p) { if (index(p, root "/") == 1) p = substr(p, length(root) + 2); return p }
    function short(p) { sub(/^github\.com\/sori-dev\/sori\//, "", p); return p }
    function emit(s) { n++; out[n] = s }
    function trimq(s) { gsub(/^[ \t]+|[ \t]+$/, "", s); gsub(/^\x27|\x27$/, "", s); return s }
    function resetpkg() { ntests = 0; race = 0; panicmsg = ""; running = ""; fuzzin = ""; inrun = 0 }
    BEGIN { resetpkg(); section = ""; nstatic = 0; nfailed = 0; n = 0; builderrs = 0 }

    # ---- lane step markers (both lanes)
    /^FAILED: / { failedsteps[++nfailed] = $0; next }
    /^== static checks/ { section = "static"; next }
    /^== npm test in / { section = "npm"; dir = $5; next }

    # ---- go test output
    /^[ \t]*--- FAIL: / {
      name = $0; sub(/^[ \t]*--- FAIL: /, "", name); sub(/ \(.*$/, "", name)
      tests[++ntests] = name; next
    }
    /race detected during execution of test|^WARNING: DATA RACE/ { race = 1; next }
    /^panic: / && panicmsg == "" { panicmsg = $0; next }
    /^running tests:$/ { inrun = 1; next }
    inrun && /^\t[A-Za-z]/ { t = $0; sub(/^\t/, "", t); sub(/ \(.*$/, "", t); running = running (running == "" ? "" : ", ") t; next }
    { inrun = 0 }
    /Failing input written to / { fuzzin = $0; sub(/.*Failing input written to /, "", fuzzin); next }
    /^# / && section != "npm" { buildhdr = short($2); next }
    /^[^ \t:]+\.go:[0-9]+(:[0-9]+)?: / {
      if (section == "static") { if (nstatic < 5) static[++nstatic] = $0; next }
      if (buildhdr != "" && !(buildhdr in builderr)) { builderr[buildhdr] = $0; buildorder[++builderrs] = buildhdr }
      next
    }
    /^FAIL[ \t]+[^ \t]+/ {
      pkg = short($2); line = $0
      if (line ~ /\[build failed\]|\[setup failed\]/) {
        what = (line ~ /setup/) ? "setup failed" : "build failed"
        if (pkg in builderr) emit("go   FAIL " pkg " [" what "]: " builderr[pkg])
        else brokenpkgs = brokenpkgs " " pkg
        resetpkg(); next
      }
      s = ""
      for (i = 1; i <= ntests; i++) {
        # a parent is implied by a failed subtest listed after it
        implied = 0
        for (j = 1; j <= ntests; j++) if (j != i && index(tests[j], tests[i] "/") == 1) implied = 1
        if (!implied) s = s (s == "" ? "" : ", ") tests[i]
      }
      if (race) s = s (s == "" ? "" : " ") "[race]"
      if (panicmsg != "") s = s (s == "" ? "" : "; ") panicmsg
      if (running != "") s = s " (running: " running ")"
      if (fuzzin != "") s = s "; failing input: " rel(fuzzin)
      if (s == "") s = "(no failed test named; read its lines above)"
      emit("go   FAIL " pkg ": " s)
      resetpkg(); next
    }
    /^ok[ \t]+/ { resetpkg(); next }

    # ---- node --test TAP output
    /^[ ]*# Subtest: / {
      match($0, /^ */); d = RLENGTH / 4
      nm = $0; sub(/^[ ]*# Subtest: /, "", nm); names[d] = nm; next
    }
    /^[ ]*not ok [0-9]+ - / {
      match($0, /^ */); nd = RLENGTH / 4
      nm = $0; sub(/^[ ]*not ok [0-9]+ - /, "", nm); sub(/ # (TODO|SKIP).*$/, "", nm)
      path = ""
      for (i = 0; i < nd; i++) if (i in names) path = path names[i] " > "
      tap = 1; tapname = path nm; taploc = ""; taperr = ""; taptype = ""; errnext = 0
      next
    }
    tap && /^[ ]*location: / { l = $0; sub(/^[ ]*location: /, "", l); l = rel(trimq(l)); sub(/:[0-9]+$/, "", l); taploc = l; next }
    tap && /^[ ]*failureType: / { taptype = trimq(substr($0, index($0, ":") + 1)); next }
    tap && /^[ ]*error: / {
      e = trimq(substr($0, index($0, ":") + 1))
      if (e ~ /^[|>]-?$/) errnext = 1; else taperr = e
      next
    }
    tap && errnext { taperr = trimq($0); errnext = 0; next }
    tap && /^[ ]*\.\.\.$/ {
      tap = 0
      if (taptype != "subtestsFailed") {
        s = "node FAIL " dir ": "
        if (taploc != "") s = s taploc " "
        s = s "\"" tapname "\""
        if (taperr != "") s = s ": " taperr
        emit(s)
      }
      next
    }

    END {
      for (i = 1; i <= builderrs; i++) {
        p = buildorder[i]; shown = 0
        for (k = 1; k <= n; k++) if (index(out[k], "go   FAIL " p " [") == 1) shown = 1
        if (!shown) emit("go   build " p ": " builderr[p])
      }
      if (brokenpkgs != "") emit("go   FAIL (build failed, broken import):" brokenpkgs)
      for (i = 1; i <= nstatic; i++) emit(lane ": static check: " static[i])
      if (n == 0 || nstatic > 0) for (i = 1; i <= nfailed; i++) {
        if (nstatic > 0 && failedsteps[i] !~ /static/ && n > nstatic) continue
        emit(lane ": " failedsteps[i])
      }
      for (i = 1; i <= n; i++) print out[i]
    }
  ' "$3"
}

# summarize ROOT lane=LOG...: every lane's lines, capped, with a header.
summarize() {
  local root=$1 spec lines all
  shift
  all=""
  for spec in "$@"; do
    [ -f "${spec#*=}" ] || continue
    lines=$(summarize_lane "${spec%%=*}" "$root" "${spec#*=}")
    [ -n "$lines" ] && all+="$lines"$'\n'
  done
  [ -n "$all" ] || return 0
  local max=${SORI_SUMMARY_LINES:-15} total
  total=$(printf '%s' "$all" | grep -c '')
  echo "== what failed (details above; search the log for '--- FAIL', 'FAIL	', 'panic:', 'DATA RACE', 'not ok', 'FAILED:')"
  if [ "$total" -le "$max" ]; then
    printf '%s' "$all" | cut -c1-240
  else
    printf '%s' "$all" | head -n $((max - 1)) | cut -c1-240
    echo "... and $((total - max + 1)) more"
  fi
}

# self_test: real failing Go tests and node tests, summarized.
self_test() {
  local dir
  dir=$(mktemp -d "${TMPDIR:-/tmp}/sori-summary.XXXXXX")
  trap 'rm -rf "$dir"' RETURN
  mkdir -p "$dir/m/a" "$dir/m/b" "$dir/m/c" "$dir/js"
  cat >"$dir/m/go.mod" <<'EOF'
module example.com/m

go 1.21
EOF
  cat >"$dir/m/a/a_test.go" <<'EOF'
package a

import "testing"

func TestPlainFails(t *testing.T) { t.Fatal("plain") }

func TestParent(t *testing.T) {
	t.Run("ok", func(t *testing.T) {})
	t.Run("bad", func(t *testing.T) { t.Error("sub") })
}

func TestPasses(t *testing.T) {}

var shared int

func TestRacy(t *testing.T) {
	done := make(chan bool)
	go func() { shared++; done <- true }()
	shared++
	<-done
}
EOF
  cat >"$dir/m/b/b_test.go" <<'EOF'
package b

import "testing"

func TestPanics(t *testing.T) {
	var m map[string]int
	m["x"] = 1
}
EOF
  cat >"$dir/m/c/c_test.go" <<'EOF'
package c

import "testing"

func TestBroken(t *testing.T) { undefinedName() }
EOF
  cat >"$dir/js/x.test.js" <<'EOF'
import test from 'node:test';
import assert from 'node:assert';

test('passes', () => {});
test('top fails', () => { assert.equal(1, 2); });
test('parent', async (t) => {
  await t.test('child ok', () => {});
  await t.test('child fails', () => { throw new Error('child broke'); });
});
EOF
  echo '{"type":"module"}' >"$dir/js/package.json"
  {
    (cd "$dir/m" && GOFLAGS= GOWORK=off go test -race -count=1 ./... 2>&1) || true
  } >"$dir/go.log"
  {
    echo "== npm test in js"
    (cd "$dir/js" && node --test ./*.test.js 2>&1) || true
    echo "FAILED: npm test in js"
  } >"$dir/node.log"
  local got want missing=0
  got=$(summarize "$dir" go="$dir/go.log" node="$dir/node.log")
  for want in \
    'go   FAIL example.com/m/a: TestPlainFails, TestParent/bad, TestRacy [race]' \
    'go   FAIL example.com/m/b: TestPanics; panic: assignment to entry in nil map' \
    'go   FAIL example.com/m/c [build failed]: c/c_test.go:5:' \
    'undefined: undefinedName' \
    'node FAIL js: js/x.test.js:5 "top fails":' \
    'node FAIL js: js/x.test.js:8 "parent > child fails": child broke'; do
    if ! grep -qF -- "$want" <<<"$got"; then
      echo "test-summary self-test: missing: $want" >&2
      missing=1
    fi
  done
  if grep -q 'passes\|"parent":\|child ok' <<<"$got"; then
    echo "test-summary self-test: names a test that passed" >&2
    missing=1
  fi
  if [ "$missing" != 0 ]; then
    echo "--- summary was:" >&2; echo "$got" >&2
    echo "--- go log:" >&2; cat "$dir/go.log" >&2
    echo "--- node log:" >&2; cat "$dir/node.log" >&2
    return 1
  fi
  echo "test-summary self-test: ok"
}

if [ "${1:-}" = --self-test ]; then
  self_test
else
  summarize "$@"
fi
