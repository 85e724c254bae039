# Sori's make targets. `make run` starts the server on embedded defaults;
# `make test` runs every test (what CI runs).

GO ?= go
NODE_TEST_DIRS := $(shell git ls-files '*package.json' 2>/dev/null | grep -v node_modules | xargs -r -n1 dirname)

.PHONY: run build test test-go test-node fuzz bench vet

run:
	$(GO) run ./cmd/sori serve

build:
	$(GO) build -o sori ./cmd/sori

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

test: vet test-go test-node

test-go:
	$(GO) test -race -count=1 -timeout 20m ./...
	# A short run of each fuzz target on top of its committed seed corpus.
	$(GO) test -run '^$$' -fuzz FuzzDecodeCommands -fuzztime 10s ./internal/protocol
	$(GO) test -run '^$$' -fuzz FuzzFrameLoop -fuzztime 10s ./internal/transport/ws

test-node:
	@for d in $(NODE_TEST_DIRS); do echo "== npm test in $$d"; (cd $$d && npm test) || exit 1; done

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodeCommands -fuzztime 5m ./internal/protocol
	$(GO) test -run '^$$' -fuzz FuzzFrameLoop -fuzztime 5m ./internal/transport/ws

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
