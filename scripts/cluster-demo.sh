#!/usr/bin/env bash
# cluster-demo: three `sori serve` nodes sharing one PostgreSQL database and
# one NATS server on this machine, to try cluster mode (docs/operations.md,
# "Cluster mode"). Post in a room on one node's web app and watch it arrive
# live on another's. Ctrl-C stops everything and drops the database.
#
#   scripts/cluster-demo.sh            # Debian's PostgreSQL via pg_virtualenv
#   SORI_POSTGRES=DSN scripts/cluster-demo.sh   # an existing database
#
# Needs Go and, without SORI_POSTGRES, Debian's postgresql package
# (apt-get install postgresql). Nodes listen on 127.0.0.1:7701-7703; there is
# no load balancer in front: open a different node in each browser tab.
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

echo "cluster-demo: building sori and nats-server (the nats-server Go module Sori already depends on)"
go build -o "$work/sori" ./cmd/sori
go build -o "$work/nats-server" github.com/nats-io/nats-server/v2

# Shared secrets: every node must have the same ones.
export SORI_TOKEN_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export SORI_API_KEYS=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')

"$work/nats-server" -a 127.0.0.1 -p 14222 >"$work/nats.log" 2>&1 &
pids+=($!)

for n in 1 2 3; do
  "$work/sori" serve --listen "127.0.0.1:770$n" --data "$work/node$n" --node-id "node$n" \
    --nats nats://127.0.0.1:14222 --turn-listen "127.0.0.1:1347$n" >"$work/node$n.log" 2>&1 &
  pids+=($!)
done
for n in 1 2 3; do
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:770$n/readyz" >/dev/null 2>&1 && break
    sleep 0.2
  done
  curl -fs "http://127.0.0.1:770$n/readyz" >/dev/null || { echo "node$n did not start:"; cat "$work/node$n.log"; exit 1; }
done

cat <<MSG
cluster-demo: three nodes share one chat.
  node1  http://127.0.0.1:7701/
  node2  http://127.0.0.1:7702/
  node3  http://127.0.0.1:7703/
Sign up on node1, create a room, open it on node2 (log in with the same account) and post from either.
Add users from the shell:  SORI_POSTGRES='$SORI_POSTGRES' $work/sori user add NAME
Server API key: $SORI_API_KEYS      Logs: $work/*.log      Ctrl-C to stop.
MSG
wait "${pids[@]}"
