# strongcheck — see README.md. Targets run as root on Debian (the local
# backend needs network namespaces and nftables); `deps` installs what is
# missing.
GO ?= go
BIN := bin/strongcheck
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/strongcheck/strongcheck/cli.Version=$(VERSION)
# Pure packages: no servers, run with the race detector.
PURE := ./results/... ./checker/... ./cluster ./nemesis/... ./cli/... ./cluster/k8s/...
# Integration packages: real PostgreSQL servers and real faults.
INTEGRATION := ./cluster/local/... ./workload/... ./harness/...
SCENARIOS := async-failover local-commit-failover stale-standby-reads remote-apply-reads \
	any1-wrong-promotion cancel-sync-wait timeout-then-vanish sound-default
ZOO_RUNS ?= 20

.PHONY: all build deps test test-pure test-integration lint bench run e2e-kind zoo scenarios clean $(addprefix reproduce-,$(SCENARIOS))

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/strongcheck

deps:
	@scripts/install-deps.sh

# The test suite: lint, pure packages with -race, then integration tests
# against real clusters (they share the machine's 2 cores: -p 1).
test: deps lint test-pure test-integration

test-pure:
	$(GO) test -race -count=1 $(PURE)

test-integration: build
	$(GO) test -count=1 -p 1 -timeout 20m $(INTEGRATION) ./scenario/...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Benchmarks: cluster up and failover, client throughput against pgbench on
# the same cluster, and the checker on a million operations against raw
# porcupine. Figures are ratios against references measured in the same run.
bench: deps build
	$(GO) test -run '^$$' -bench . -benchtime 5x -count 1 ./cluster/local/
	$(GO) test -run '^TestBenchThroughputVsPgbench$$' -count 1 -v ./harness/ | grep -E 'pgbench|ratio|ops|---'
	$(GO) test -run '^TestSpeed1M$$' -count 1 -v ./checker/ | grep -vE '^=== RUN'

# The default test of the seed guide's promise (60 s, kill-primary and
# partition faults, auto failover) with a report in ./store.
run: deps build
	./$(BIN) test

scenarios: build
	./$(BIN) scenarios

$(addprefix reproduce-,$(SCENARIOS)): reproduce-%: deps build
	./$(BIN) test --scenario $*

zoo: deps build
	./$(BIN) zoo --runs $(ZOO_RUNS)

e2e-kind:
	STRONGCHECK_E2E_KIND=1 $(GO) test -count=1 -v -run E2E ./cluster/k8s/

clean:
	rm -rf bin
