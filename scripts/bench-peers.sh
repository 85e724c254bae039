#!/usr/bin/env bash
# make bench-peers: Sori beside the servers its users would pick instead
# (Centrifugo, Node ws, Socket.IO, uWebSockets.js), same workloads, same run
# (issue 15; docs/benchmarks.md "Peers side by side").
#
# The peers are installed into a cache directory outside the repository
# (default ~/.cache/sori-bench-peers; SORI_PEERS_DIR overrides): Centrifugo
# with `go install`, ws, socket.io and uWebSockets.js with npm. Nothing
# fetched is committed; the peers' configs are scripts/bench-peers/*.
# A peer that cannot be installed or started here is reported as such and
# skipped.
#
# Each round starts every server fresh, pinned to CPU 0, with `sori bench`
# (the one load generator, speaking each server's protocol) on CPU 1, and
# measures, server by server:
#   idle   RSS per idle connection: RSS before, IDLE_CONNS connections each
#          subscribed to one channel and sent one publication, RSS after.
#   fanout deliveries per server CPU-second: FANOUT_CONNS subscribers of one
#          channel, FANOUT_RATE publications/s through the server's HTTP API.
# It prints every round and the median of the per-round ratios Sori / peer.
# The machine's load average is printed beside each figure: other work on
# the cores moves absolute figures, which is why only same-round ratios count.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${SORI_PEERS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sori-bench-peers}
rounds=${ROUNDS:-3}
peers=${PEERS:-sori sori-nopool centrifugo ws socketio uws}
idle_conns=${IDLE_CONNS:-10000}
fan_conns=${FANOUT_CONNS:-2000}
fan_rate=${FANOUT_RATE:-200}
duration=${DURATION:-5s}
ramp=${RAMP:-500} # connections opened per second; lower it on a loaded machine, where token requests time out
centrifugo_version=${CENTRIFUGO_VERSION:-v6.9.1}
server_cpu=${SERVER_CPU:-0}
load_cpu=${LOAD_CPU:-1}

work=$(mktemp -d "${TMPDIR:-/tmp}/sori-bench-peers.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
key=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
need=$((idle_conns + 200))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
	echo "bench-peers: open-files limit $(ulimit -n) is below IDLE_CONNS+200 = $need" >&2
	exit 1
fi

echo "== installing into $cache"
mkdir -p "$cache/bin" "$cache/node"
go build -o "$work/sori" ./cmd/sori
declare -A skip
for peer in $peers; do
	case $peer in
	centrifugo)
		if [ ! -x "$cache/bin/centrifugo" ]; then
			GOBIN="$cache/bin" go install "github.com/centrifugal/centrifugo/v6@$centrifugo_version" ||
				skip[$peer]="go install of Centrifugo $centrifugo_version failed"
		fi ;;
	ws | socketio | uws)
		if [ ! -d "$cache/node/node_modules/ws" ] || [ ! -d "$cache/node/node_modules/socket.io" ]; then
			(cd "$cache/node" && { [ -f package.json ] || echo '{"private":true}' >package.json; } &&
				npm install --no-audit --no-fund ws@8 socket.io@4 >/dev/null) ||
				skip[$peer]="npm install failed"
		fi ;;
	esac
done
case " $peers " in *" uws "*)
	# uWebSockets.js is published on GitHub, not on npm. The npm registry has
	# republished builds: @btc-vision/uwebsockets.js (v20.5x, binaries need
	# glibc 2.38) and @trufflesuite/uws-js-unofficial (v20.30, loads on
	# Debian 12's glibc 2.36). The first that loads here is measured.
	uws_module=
	for mod in @btc-vision/uwebsockets.js@20 @trufflesuite/uws-js-unofficial@20.30.0-unofficial.0; do
		name=${mod%@*}
		if [ ! -d "$cache/node/node_modules/$name" ]; then
			(cd "$cache/node" && npm install --no-audit --no-fund "$mod" >/dev/null 2>&1) || true
		fi
		if why=$(cd "$cache/node" && node -e "require('$name')" 2>&1); then
			uws_module=$name
			echo "   uws: $name $(cd "$cache/node" && node -p "require('$name/package.json').version")"
			break
		fi
		echo "   uws: $name does not load here: $(echo "$why" | grep -m1 -o "GLIBC_[0-9.]*. not found\|Cannot find module .*" || echo "$why" | head -1)"
	done
	[ -n "$uws_module" ] || skip[uws]="no uWebSockets.js build on npm loads here"
	;;
esac
for peer in "${!skip[@]}"; do echo "   $peer: skipped (${skip[$peer]})"; done

wait_port() {
	for _ in $(seq 1 300); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.2
	done
	return 1
}

# start NAME PORT: starts a fresh server, sets $pid and $proto.
start() {
	local name=$1 port=$2
	case $name in
	sori | sori-nopool)
		local extra=()
		[ "$name" = sori-nopool ] && extra=(--ws-write-pool=false)
		rm -rf "$work/data-$name"
		"$work/sori" serve --turn=false --data "$work/data-$name" --listen "127.0.0.1:$port" --api-keys "$key" \
			--max-connections-per-ip 100000 "${extra[@]}" >"$work/$name.log" 2>&1 &
		proto=sori ;;
	centrifugo)
		CENTRIFUGO_HTTP_SERVER_PORT=$port CENTRIFUGO_HTTP_SERVER_ADDRESS=127.0.0.1 CENTRIFUGO_HTTP_API_KEY=$key \
			"$cache/bin/centrifugo" --config scripts/bench-peers/centrifugo.json >"$work/$name.log" 2>&1 &
		proto=centrifugo ;;
	ws)
		PORT=$port NODE_PATH="$cache/node/node_modules" node scripts/bench-peers/ws-server.js >"$work/$name.log" 2>&1 &
		proto=plain ;;
	socketio)
		PORT=$port NODE_PATH="$cache/node/node_modules" node scripts/bench-peers/socketio-server.js >"$work/$name.log" 2>&1 &
		proto=socketio ;;
	uws)
		PORT=$port NODE_PATH="$cache/node/node_modules" UWS_MODULE=$uws_module \
			node scripts/bench-peers/uws-server.js >"$work/$name.log" 2>&1 &
		proto=plain ;;
	esac
	pid=$!
	pids+=("$pid")
	if ! wait_port "$port"; then
		echo "bench-peers: $name did not start; its log:" >&2
		tail -5 "$work/$name.log" >&2
		return 1
	fi
}

rss() { awk '/^VmRSS:/ {print $2 * 1024}' "/proc/$1/status"; }
load() { cut -d' ' -f1 /proc/loadavg; }

bench() { # bench NAME ROUND KIND args...: runs sori bench against the started server
	local name=$1 round=$2 kind=$3
	shift 3
	"$work/sori" bench --protocol "$proto" --url "http://127.0.0.1:$port" --api-key "$key" --server-pid "$pid" \
		--server-cpu "$server_cpu" --cpu "$load_cpu" --ramp "$ramp" --publishers 16 --max-conns 100000 \
		--json "$work/$kind-$name-$round.json" "$@" >"$work/$kind-$name-$round.txt" 2>&1 || true
}

results="$work/results.tsv"
printf 'round\tserver\tidle_B_per_conn\tidle_load\tdeliveries\tcpu_s\tdel_per_cpu_s\tfan_load\n' >"$results"
port=17800
for round in $(seq 1 "$rounds"); do
	echo "== round $round of $rounds"
	for name in $peers; do
		[ -n "${skip[$name]:-}" ] && continue
		port=$((port + 1))
		if ! start "$name" "$port"; then skip[$name]="did not start"; continue; fi
		# Warm-up: the first connections and publications allocate what
		# every later one reuses (pools, code paths, the JIT).
		bench "$name" "$round" warm --conns 100 --rate 10 --duration 1s
		before=$(rss "$pid")
		l1=$(load)
		bench "$name" "$round" idle --conns "$idle_conns" --rate 1 --duration 3s
		after=$(jq -r '.server_rss_bytes' "$work/idle-$name-$round.json" 2>/dev/null || echo 0)
		conns=$(jq -r '.connected' "$work/idle-$name-$round.json" 2>/dev/null || echo 0)
		idle=$(awk -v a="$after" -v b="$before" -v n="$conns" 'BEGIN { if (n > 0) printf "%.0f", (a - b) / n; else print "nan" }')
		l2=$(load)
		bench "$name" "$round" fan --conns "$fan_conns" --rate "$fan_rate" --duration "$duration"
		del=$(jq -r '.delivered' "$work/fan-$name-$round.json" 2>/dev/null || echo 0)
		cpu=$(jq -r '.server_cpu_s' "$work/fan-$name-$round.json" 2>/dev/null || echo 0)
		dps=$(awk -v d="$del" -v c="$cpu" 'BEGIN { if (c > 0) printf "%.0f", d / c; else print "nan" }')
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$idle" "$l1" "$del" "$cpu" "$dps" "$l2" >>"$results"
		printf '   %-12s idle %6s B/conn (%s conns, load %s)   fan-out %9s deliveries/CPU-s (%s deliveries, load %s)\n' \
			"$name" "$idle" "$conns" "$l1" "$dps" "$del" "$l2"
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
done

echo "== medians of the per-round ratios (Sori / peer; idle: lower is better for Sori, fan-out: higher)"
for name in $peers; do
	[ "$name" = sori ] && continue
	awk -F'\t' -v peer="$name" '
		NR > 1 && $2 == "sori" { si[$1] = $3; sf[$1] = $7 }
		NR > 1 && $2 == peer { pi[$1] = $3; pf[$1] = $7 }
		function median(a, n,   i, j, t) {
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
			return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		}
		END {
			n = 0; m = 0
			for (r in pi) if ((r in si) && pi[r] > 0 && si[r] > 0) ir[++n] = si[r] / pi[r]
			for (r in pf) if ((r in sf) && pf[r] > 0 && sf[r] > 0) fr[++m] = sf[r] / pf[r]
			if (n == 0 && m == 0) { printf "   %-12s no rounds measured\n", peer; exit }
			printf "   %-12s idle RSS/conn ×%s   fan-out deliveries/CPU-s ×%s   (%d rounds)\n", peer,
				n ? sprintf("%.2f", median(ir, n)) : "-", m ? sprintf("%.2f", median(fr, m)) : "-", (n > m ? n : m)
		}' "$results"
done
for peer in "${!skip[@]}"; do echo "   $peer: not measured (${skip[$peer]})"; done
out=${BENCH_PEERS_OUT:-$cache/bench-peers-$(date -u +%Y%m%dT%H%M%SZ).tsv}
cp "$results" "$out"
echo "per-round figures: $out"
