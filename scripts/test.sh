#!/usr/bin/env bash
# Sori's test command: `make test` runs this, and so does CI (.ci/run).
#
# On a fresh clone of a fresh Debian machine that has only Go it first sets up
# what the tests need, then runs every test:
#
#   1. system packages (scripts/deps.sh): Node.js 20+ and npm, Debian's chromium
#      and emoji font for the browser tests, PostgreSQL (pg_virtualenv) for the
#      store tests. Installed with apt-get when missing and running as root;
#      otherwise the script stops and prints the one command that installs them.
#   2. npm packages, exactly as pinned in each package-lock.json (`npm ci`),
#      wherever node_modules does not match its lock file yet.
#   3. gofmt, then two lanes at the same time: they share nothing, and the
#      Node lane mostly waits on sockets, timers and the browser, so it fits
#      beside the Go lane:
#        go:   go test -race ./... inside pg_virtualenv (a throwaway PostgreSQL
#              cluster; its DSN is exported as SORI_TEST_POSTGRES);
#        node: the static checks (`go mod tidy -diff`, go vet, staticcheck), one `sori`
#              binary, then `npm test` in every package (JS client, Node ws
#              client, browser tests, docs, web unit tests) against it (SORI_BIN).
#      Each lane's lines are printed as they come, prefixed with the lane.
#   4. last, a summary of what failed (scripts/test-summary.sh): every failed
#      Go test and package (with races, panics and build errors) and every
#      failed node test by file and name, then one line per lane, so a log
#      kept only as its tail still says what failed.
#
# Environment:
#   SORI_TEST_SLOW=1        also the slow tests: Go tests that skip under -short,
#                           and a short fuzzing run of each fuzz target (CI sets it)
#   SORI_TEST_POSTGRES=dsn  use this PostgreSQL instead of a pg_virtualenv cluster
#   SORI_TEST_NO_INSTALL=1  never install anything; report what is missing
#   GO                      the go command (default: go)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
GO=${GO:-go}
slow=${SORI_TEST_SLOW:-}
start=$SECONDS

# shellcheck source=scripts/deps.sh
. scripts/deps.sh
sori_deps_ensure
sori_npm_ci

work=$(mktemp -d "${TMPDIR:-/tmp}/sori-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt: these files need formatting (run gofmt -w):" >&2
  echo "$unformatted" >&2
  exit 1
fi

# checks: go.mod and go.sum as `go mod tidy` leaves them, go vet, and
# staticcheck from the module proxy at a pinned version (no install step; the
# same findings for everyone, as a newer release may add checks). Vet compiles
# the packages without -race, which the node lane's binary reuses.
checks() {
  echo "== static checks"
  "$GO" mod tidy -diff && "$GO" vet ./... && "$GO" run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./... &&
    bash scripts/test-summary.sh --self-test
}

# The lanes run as `fn || rc=$?`, where bash ignores set -e: each step's
# status is collected explicitly.

# go_lane runs the Go tests (inside a throwaway PostgreSQL cluster unless
# SORI_TEST_POSTGRES names one).
go_lane() {
  local failed=0 short=-short
  [ -n "$slow" ] && short=
  local cmd="$GO test -race -count=1 -timeout 20m $short ./..."
  if [ -n "${SORI_TEST_POSTGRES:-}" ]; then
    $cmd || { echo "FAILED: $cmd"; failed=1; }
  else
    # pg_virtualenv exports PGHOST, PGPORT, PGUSER, PGPASSWORD and PGDATABASE
    # for its cluster; the tests read the one variable below.
    pg_virtualenv -t -- bash -c 'export SORI_TEST_POSTGRES="host=$PGHOST port=$PGPORT user=$PGUSER password=$PGPASSWORD dbname=$PGDATABASE"; exec '"$cmd" ||
      { echo "FAILED: $cmd (in pg_virtualenv)"; failed=1; }
  fi
  if [ -n "$slow" ]; then
    # A short run of each fuzz target on top of its committed seed corpus
    # (the seeds themselves already ran as ordinary tests above). The budget
    # is a count of executions, about 10 s each on a loaded 2-core machine,
    # not a duration: with -fuzztime 10s Go 1.26's coordinator can report its
    # own stop deadline as a failure ("context deadline exceeded", no input
    # written; golang/go#75804, fixed in Go 1.27), which failed CI once on
    # FuzzForwarder. A count has no deadline to race.
    local spec target pkg runs
    for spec in '^FuzzDecodeCommands$:./internal/protocol:30000' '^FuzzDecodeCommandsMsgpack$:./internal/protocol:200000' \
      'FuzzFrameLoop:./internal/transport/ws:4000' 'FuzzForwarder:./internal/rtc/sfu:50000'; do
      IFS=: read -r target pkg runs <<<"$spec"
      "$GO" test -run '^$' -fuzz "$target" -fuzztime "${runs}x" "$pkg" || { echo "FAILED: fuzz $target $pkg"; failed=1; }
    done
  fi
  return $failed
}

# node_lane runs the static checks, builds the server once and runs every
# npm package's tests against it.
node_lane() {
  local failed=0
  checks || { echo "FAILED: static checks"; failed=1; }
  "$GO" build -o "$work/sori" ./cmd/sori || { echo "FAILED: go build ./cmd/sori"; return 1; }
  export SORI_BIN="$work/sori"
  local dir
  for dir in $(sori_npm_dirs); do
    echo "== npm test in $dir"
    (cd "$dir" && npm test) || { echo "FAILED: npm test in $dir"; failed=1; }
  done
  return $failed
}

# lane NAME FUNCTION: runs FUNCTION with every output line prefixed by NAME,
# keeps its raw lines in $work/NAME.log for the summary, and records its exit
# status and duration.
lane() {
  local name=$1 fn=$2 t0=$SECONDS rc=0
  { "$fn" 2>&1 || rc=$?; echo "$rc $((SECONDS - t0))" >"$work/$name.status"; } |
    tee "$work/$name.log" | sed -u "s/^/[$name] /"
}

# summary: what failed, then one line per lane; the last lines of the output.
summary() {
  bash scripts/test-summary.sh "$root" go="$work/go.log" node="$work/node.log" || echo "(test-summary.sh failed)"
  local name rc secs
  passed=0 failed=0
  for name in go node; do
    if ! read -r rc secs 2>/dev/null <"$work/$name.status"; then
      rc=unfinished secs=?
    fi
    if [ "$rc" = 0 ]; then
      passed=$((passed + 1)); echo "$name lane: ok (${secs}s)"
    else
      failed=$((failed + 1)); echo "$name lane: FAILED, exit $rc (${secs}s); its lines above start with [$name]"
    fi
  done
  echo "test lanes: $passed passed, $failed failed ($((SECONDS - start))s in all)"
}

# Stopped from outside (a CI timeout sends SIGTERM): still say what had
# failed so far.
trap 'echo "== interrupted"; summary; exit 130' INT TERM

echo "== tests (go and node lanes in parallel)"
lane go go_lane &
go_pid=$!
lane node node_lane &
node_pid=$!
wait $go_pid $node_pid || true
trap - INT TERM

summary
[ "$failed" = 0 ]
