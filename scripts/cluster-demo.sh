#!/usr/bin/env bash
# cluster-demo: three `sori serve` nodes sharing one PostgreSQL database and
# one NATS server on this machine, behind a load balancer that sends every
# request to a random node (no sticky sessions), to try cluster mode
# (docs/operations.md, "Cluster mode"). Open http://127.0.0.1:7700/ in two
# browsers, post in a room and watch it arrive live in the other, whichever
# node each request reached. Kill a node (the PIDs are printed) and watch the
# clients carry on. Ctrl-C stops everything and drops the database.
#
#   make cluster-demo                   # Debian's PostgreSQL via pg_virtualenv
#   SORI_POSTGRES=DSN make cluster-demo # an existing database
#
# Needs Go and, without SORI_POSTGRES, Debian's postgresql package
# (apt-get install postgresql). Ports: 7700 (balancer), 7701-7703 (nodes),
# 14222 (NATS).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${SORI_POSTGRES:-}" ]; then
  if [ -z "${PGHOST:-}" ]; then
    command -v pg_virtualenv >/dev/null || { echo "cluster-demo: install postgresql (Debian) or set SORI_POSTGRES" >&2; exit 1; }
    exec pg_virtualenv -t "$0" "$@"
  fi
  export SORI_POSTGRES="host=$PGHOST port=$PGPORT user=$PGUSER password=$PGPASSWORD dbname=$PGDATABASE"
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "cluster-demo: building sori, the balancer and nats-server (the nats-server Go module Sori already depends on)"
go build -o "$work/sori" ./cmd/sori
go build -o "$work/sorilb" ./internal/tools/sorilb
go build -o "$work/nats-server" github.com/nats-io/nats-server/v2

# Shared secrets: every node must have the same ones.
SORI_TOKEN_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
SORI_API_KEYS=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
export SORI_TOKEN_SECRET SORI_API_KEYS

# JetStream on, with its own store: the production setup (docs/operations.md).
"$work/nats-server" -a 127.0.0.1 -p 14222 -js -sd "$work/jetstream" >"$work/nats.log" 2>&1 &
pids+=($!)

for n in 1 2 3; do
  # Every client reaches the nodes through the balancer, from 127.0.0.1:
  # the per-address limits are raised accordingly.
  "$work/sori" serve --listen "127.0.0.1:770$n" --data "$work/node$n" --node-id "node$n" \
    --nats nats://127.0.0.1:14222 --turn-listen "127.0.0.1:1347$n" \
    --max-connections-per-ip 100000 --login-rate 600 --login-burst 100 >"$work/node$n.log" 2>&1 &
  pids+=($!)
  eval "node${n}_pid=$!"
done
for n in 1 2 3; do
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:770$n/readyz" >/dev/null 2>&1 && break
    sleep 0.2
  done
  curl -fs "http://127.0.0.1:770$n/readyz" >/dev/null || { echo "node$n did not start:"; cat "$work/node$n.log"; exit 1; }
done
"$work/sorilb" -listen 127.0.0.1:7700 127.0.0.1:7701 127.0.0.1:7702 127.0.0.1:7703 >"$work/lb.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  curl -fs http://127.0.0.1:7700/readyz >/dev/null 2>&1 && break
  sleep 0.2
done

cat <<MSG
cluster-demo: three nodes share one chat, behind a random (non-sticky) balancer.
  balancer  http://127.0.0.1:7700/   (each request goes to a random node)
  node1     http://127.0.0.1:7701/   pid $node1_pid
  node2     http://127.0.0.1:7702/   pid $node2_pid
  node3     http://127.0.0.1:7703/   pid $node3_pid
Sign up at http://127.0.0.1:7700/, create a room, open it in a second browser (log in with another account, invite
it) and post from either. Try 'kill -9 $node2_pid': clients on node2 reconnect through the balancer and resume.
Add users from the shell:  SORI_POSTGRES='$SORI_POSTGRES' $work/sori user add NAME
Server API key: $SORI_API_KEYS      Logs: $work/*.log      Ctrl-C to stop.
MSG
wait "${pids[@]}"
