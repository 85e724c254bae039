# Sori's make targets. `make run` starts the server on embedded defaults;
# `make test` sets up what the tests need and runs every test (what CI runs;
# see scripts/test.sh).

GO ?= go
export GO

.PHONY: run build test check fuzz bench cluster-demo test-cluster bench-cluster bench-peers

run:
	$(GO) run ./cmd/sori serve

build:
	$(GO) build -o sori ./cmd/sori

test:
	bash scripts/test.sh

# The static checks alone (also part of `make test`).
check:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) mod tidy -diff
	$(GO) vet ./...
	GOOS=darwin $(GO) vet ./... # the non-Linux fallbacks (poll_other.go, writenb_other.go) still compile
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodeCommands -fuzztime 5m ./internal/protocol
	$(GO) test -run '^$$' -fuzz FuzzFrameLoop -fuzztime 5m ./internal/transport/ws
	$(GO) test -run '^$$' -fuzz FuzzForwarder -fuzztime 5m ./internal/rtc/sfu

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Three nodes, NATS and Debian's PostgreSQL behind a random balancer on
# 127.0.0.1:7700 (docs/operations.md, "Cluster mode").
cluster-demo:
	bash scripts/cluster-demo.sh

# The full multi-node chaos run (child processes: kill -9, SIGSTOP, NATS
# restart, PostgreSQL connections cut, dropped/reordered bus messages, the
# 10k subscribe/publish race); the one-kill case is part of `make test`.
test-cluster:
	pg_virtualenv -t -- bash -c 'SORI_TEST_POSTGRES="host=$$PGHOST port=$$PGPORT user=$$PGUSER password=$$PGPASSWORD dbname=$$PGDATABASE" SORI_TEST_SLOW=1 SORI_TEST_CLUSTER=1 $(GO) test -count=1 -v -timeout 40m -run . ./internal/tools/clustertest'

# The cluster benchmarks of docs/benchmarks.md (three nodes against one, same run).
# fsync on: pg_virtualenv's default (off) would make the durable appends not durable.
bench-cluster:
	pg_virtualenv -t -o fsync=on -- bash -c 'SORI_TEST_POSTGRES="host=$$PGHOST port=$$PGPORT user=$$PGUSER password=$$PGPASSWORD dbname=$$PGDATABASE" SORI_CLUSTER_BENCH=1 $(GO) test -count=1 -v -timeout 30m -run TestClusterBench ./internal/tools/clustertest'

# Sori beside Centrifugo, Node ws, Socket.IO and uWebSockets.js: idle memory and
# fan-out CPU, same run (docs/benchmarks.md). Installs the peers outside the repo.
bench-peers:
	bash scripts/bench-peers.sh
