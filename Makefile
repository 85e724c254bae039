# Sori's make targets. `make run` starts the server on embedded defaults;
# `make test` sets up what the tests need and runs every test (what CI runs;
# see scripts/test.sh).

GO ?= go
export GO

.PHONY: run build test check fuzz bench

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
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodeCommands -fuzztime 5m ./internal/protocol
	$(GO) test -run '^$$' -fuzz FuzzFrameLoop -fuzztime 5m ./internal/transport/ws
	$(GO) test -run '^$$' -fuzz FuzzForwarder -fuzztime 5m ./internal/rtc/sfu

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
