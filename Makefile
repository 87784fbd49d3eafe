# strongcheck — see README.md. Targets run as root on Debian (the local
# backend needs network namespaces and nftables); `deps` installs what is
# missing.
# pipefail: a failing `go test | grep` must fail the target.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
GO ?= go
BIN := bin/strongcheck
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/strongcheck/strongcheck/cli.Version=$(VERSION)
# Pure packages: no servers, run with the race detector.
PURE := ./results/... ./report/... ./checker/... ./cluster ./cluster/syncnames ./cli/... ./cluster/k8s/... ./internal/... ./harness/config/...
# Integration packages: real PostgreSQL servers and real faults.
INTEGRATION := ./cluster/local/... ./cluster/existing/... ./nemesis/... ./workload/... ./harness/...
SCENARIOS := default-test async-failover local-commit-failover stale-standby-reads remote-apply-reads \
	any1-wrong-promotion cancel-sync-wait timeout-then-vanish sound-default first1-failover \
	patroni-sound patroni-async-lag patroni-cancel-sync-wait pg_auto_failover-sound pg_auto_failover-timeout-cancel pg_auto_failover-async \
	long-fork-across-nodes serializable-standby-reads serializable-primary
ZOO_RUNS ?= 20
FUZZTIME ?= 60s

.PHONY: all build deps deps-managers test test-pure test-integration lint bench bench-long fuzz run e2e-kind e2e-k8s zoo scenarios clean $(addprefix reproduce-,$(SCENARIOS))

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/strongcheck

deps:
	@scripts/install-deps.sh

# The tests also run the HA managers (Patroni, pg_auto_failover): install
# them too. Their integration tests skip, saying so, where they cannot be.
deps-managers:
	@scripts/install-deps.sh --managers || echo "make: the HA managers' packages could not be installed; their tests will skip"

# The test suite: lint, pure packages with -race, integration tests against
# real clusters (they share the machine's 2 cores: -p 1), then the k8s
# backend's e2e test on a single-node Kubernetes built here (e2e-k8s).
test: deps deps-managers lint test-pure test-integration e2e-k8s

test-pure:
	$(GO) test -race -count=1 $(PURE)

# The report's 300k-operation tests skip themselves under -race
# (skipUnderRace): they run here, without it.
test-integration: build
	$(GO) test -count=1 -run '^(TestReportSize300k|TestFigureChoosesFormatBySize|TestIntegrationBrowserReportAndServe)$$' ./report/
	$(GO) test -count=1 -p 1 -timeout 30m $(INTEGRATION) ./scenario/...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Benchmarks: cluster up and failover (the cluster's own, and the nemesis's
# kill-primary window with every verification), client throughput against pgbench on
# the same cluster, the checker on a million operations against raw
# porcupine, and the list-append check on a million transactions (30 s and
# 3 GiB, else unknown). Figures are ratios against references measured in
# the same run.
bench: deps build
	$(GO) test -run '^$$' -bench . -benchtime 5x -count 1 ./cluster/local/
	$(GO) test -run '^$$' -bench FailoverVerified -benchtime 9x -count 1 ./nemesis/
	$(GO) test -run '^TestSpeed1M$$' -count 1 -v ./checker/ | grep -vE '^=== RUN'
	$(GO) test -run '^TestSpeed1M$$' -count 1 -v -timeout 20m ./checker/elle/ | grep -vE '^=== RUN'
	$(GO) test -run '^$$' -bench WriteAll300k -benchtime 3x -count 1 ./report/
	STRONGCHECK_BENCH=1 $(GO) test -run '^TestBenchThroughputVsPgbench$$' -count 1 -v ./harness/ | grep -E 'pgbench|ratio|---|Error|target'

# Long runs (not in CI): the default test for 60 s, 300 s and 1800 s, each
# re-checked, printing bytes per history line, harness peak memory, check
# time and check peak memory side by side (about 40 minutes in all).
# BENCH_LONG_LENGTHS overrides the lengths, e.g. 30s,60s for a quick look.
BENCH_LONG_LENGTHS ?= 60s,300s,1800s
bench-long: deps build
	$(GO) run ./scripts/benchlong -bin $(BIN) -lengths $(BENCH_LONG_LENGTHS)

# Fuzz the history reader and the flags of `strongcheck test` for FUZZTIME
# each (their seed corpora in testdata/fuzz run with every `go test`).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzRead$$' -fuzztime $(FUZZTIME) ./results/
	$(GO) test -run '^$$' -fuzz '^FuzzUnmarshalLine$$' -fuzztime $(FUZZTIME) ./results/
	$(GO) test -run '^$$' -fuzz '^FuzzTestFlags$$' -fuzztime $(FUZZTIME) ./cli/

# The default test of the seed guide's promise (60 s, kill-primary and
# partition faults, auto failover) with a report in ./store.
run: deps build
	@./$(BIN) test; code=$$?; \
	case $$code in \
	  0) echo "make run: verdict valid";; \
	  1) echo "make run: verdict invalid (expected on the guide's settings: stale reads on standbys; see the report)";; \
	  2) echo "make run: verdict unknown (a check could not decide; see the report)";; \
	  *) echo "make run: strongcheck failed (exit $$code)"; exit $$code;; \
	esac

scenarios: build
	./$(BIN) scenarios

$(addprefix reproduce-,$(SCENARIOS)): reproduce-%: deps build
	./$(BIN) test --scenario $*

zoo: deps build
	./$(BIN) zoo --runs $(ZOO_RUNS)

# A short real test on kind; skips with the reason when Docker or kind is
# missing (see README.md for running it against an existing cluster).
e2e-kind:
	@command -v docker >/dev/null 2>&1 || { echo "e2e-kind: skipped: docker is not on PATH"; exit 0; }; \
	docker info >/dev/null 2>&1 || { echo "e2e-kind: skipped: no Docker engine answers 'docker info'"; exit 0; }; \
	command -v kind >/dev/null 2>&1 || { echo "e2e-kind: skipped: kind is not on PATH"; exit 0; }; \
	kind get clusters 2>/dev/null | grep -qx strongcheck || kind create cluster --name strongcheck --wait 180s; \
	kind get kubeconfig --name strongcheck > .kind-kubeconfig; \
	STRONGCHECK_E2E_KIND=1 KUBECONFIG=$(CURDIR)/.kind-kubeconfig $(GO) test -count=1 -v -timeout 15m -run TestIntegrationKind ./cluster/k8s/

# The k8s backend on a real single-node Kubernetes assembled on this machine
# from Debian's packages and Go modules (scripts/k8s-local, README.md): the
# e2e test and a short `strongcheck test --backend k8s`; tears it all down.
e2e-k8s: build
	scripts/k8s-local/e2e.sh

clean:
	rm -rf bin
