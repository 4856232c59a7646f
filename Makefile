# medshare — make targets. `make run` and `make test` are the front door.
SHELL := /bin/bash
GO ?= go
BIN := bin
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
ADDR ?= 127.0.0.1:8080
DATA ?= ./data
FUZZTIME ?= 10s

.PHONY: all build run demo soak test test-chaincode test-fabric test-unit lint fmt-check vet staticcheck tidy-check fuzz fuzz-ci clean bench bench-quick

all: build

## build: compile the medshare binary into bin/
build:
	$(GO) build -o $(BIN)/medshare ./cmd/medshare

## run: start medshare on the embedded defaults (bbolt store, embedded ledger, dev issuer)
run: build
	$(BIN)/medshare serve --addr $(ADDR) --data $(DATA)

## demo: walk the three journeys against a throwaway node and narrate them
demo: build
	$(BIN)/medshare demo

CHAINCODE := cmd/medshare-chaincode

## test: every check and every test (what CI runs), the Fabric suite included
test: lint test-chaincode
	$(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) --no-print-directory test-fabric
	$(MAKE) --no-print-directory fuzz-ci

## test-chaincode: vet, tidy-check and test the chaincode module (its own go.mod)
test-chaincode:
	cd $(CHAINCODE) && $(GO) vet ./... && $(GO) test -race -count=1 ./...
	@cd $(CHAINCODE) && cp go.mod /tmp/medshare-cc-go.mod.bak && cp go.sum /tmp/medshare-cc-go.sum.bak && $(GO) mod tidy && \
	if ! diff -q go.mod /tmp/medshare-cc-go.mod.bak >/dev/null || ! diff -q go.sum /tmp/medshare-cc-go.sum.bak >/dev/null; then \
		echo "go mod tidy changed $(CHAINCODE)/go.mod or go.sum: commit the tidy result"; \
		cp /tmp/medshare-cc-go.mod.bak go.mod; cp /tmp/medshare-cc-go.sum.bak go.sum; exit 1; fi

## test-fabric: the Fabric integration tests (starts or reuses the native network)
test-fabric:
	$(GO) test -tags fabric -count=1 -timeout 30m -p 1 ./integrations/fabric/...
	$(GO) test -tags fabric -count=1 -timeout 30m -run 'Fabric|PeerRestart' ./cmd/medshare/

## lint: gofmt, go vet, staticcheck, go mod tidy, dependency rules
lint: fmt-check vet staticcheck tidy-check

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	$(GO) vet -tags fabric ./...

staticcheck:
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags fabric ./...

tidy-check:
	@cp go.mod /tmp/medshare-go.mod.bak && cp go.sum /tmp/medshare-go.sum.bak; \
	$(GO) mod tidy; \
	if ! diff -q go.mod /tmp/medshare-go.mod.bak >/dev/null || ! diff -q go.sum /tmp/medshare-go.sum.bak >/dev/null; then \
		echo "go mod tidy changed go.mod/go.sum: commit the tidy result"; \
		cp /tmp/medshare-go.mod.bak go.mod; cp /tmp/medshare-go.sum.bak go.sum; exit 1; fi

## fuzz: run every fuzz target for FUZZTIME each (FUZZTIME=1m make fuzz)
# Targets are discovered with one `go test -list` over all packages, which
# prints each package's Fuzz* names before its "ok" line. Minimizing a new
# input may take FUZZMINTIME (Go's default, 60s, would eat short runs); a
# target that outlives FUZZTIMEOUT fails instead of hanging the loop.
FUZZMINTIME ?= 5s
FUZZTIMEOUT ?= 10m
fuzz:
	@set -eo pipefail; targets="$$($(GO) test -list '^Fuzz' ./... | awk '/^Fuzz/ {f = f " " $$1; next} \
		/^ok/ {n = split(f, a, " "); for (i = 1; i <= n; i++) print $$2, a[i]; f = ""}')"; \
	[ -n "$$targets" ] || { echo "no fuzz targets found"; exit 1; }; \
	start=$$SECONDS; while read -r pkg f; do \
		echo "== $$pkg $$f ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINTIME) \
			-timeout $(FUZZTIMEOUT) $$pkg; \
	done <<< "$$targets"; \
	echo "fuzzed $$(wc -l <<< "$$targets") targets for $(FUZZTIME) each in $$((SECONDS - start))s"

## fuzz-ci: every fuzz target for 3s each, 2m at most per target (what CI runs)
fuzz-ci:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=3s FUZZMINTIME=1s FUZZTIMEOUT=2m

clean:
	rm -rf $(BIN)

# Native Fabric network (no docker): see integrations/fabric/network/network.sh.
FABRIC_NET := integrations/fabric/network/network.sh
.PHONY: fabric-up fabric-down fabric-clean fabric-env

## fabric-up: start (or reuse) the native Fabric network in integrations/fabric/network/.state
fabric-up:
	@bash $(FABRIC_NET) up

## fabric-down: stop the Fabric network's processes (ledgers and binaries stay)
fabric-down:
	@bash $(FABRIC_NET) down

## fabric-clean: stop the Fabric network and remove all its state
fabric-clean:
	@bash $(FABRIC_NET) clean

## fabric-env: print MEDSHARE_* exports for the network: eval "$(make -s fabric-env)"
fabric-env:
	@bash $(FABRIC_NET) env

## soak: bounded mixed load on loopback (SOAK=60s); reports throughput, errors, RSS
SOAK ?= 60s
soak:
	MEDSHARE_SOAK_DURATION=$(SOAK) $(GO) test -tags soak -count=1 -v -run '^TestSoak$$' -timeout 2h ./cmd/medshare/ | grep -E 'soak|after soak|^(ok|FAIL|---)'

# Benchmarks (issue 5): cmd/medshare-bench runs bin/medshare as child processes
# on loopback and measures each scenario against baselines in the same run.
BENCH_FLAGS ?=

## bench: every scenario (a 200k-record seed included, ~15 min); writes docs/PERFORMANCE.md
bench: build
	$(GO) build -o $(BIN)/medshare-bench ./cmd/medshare-bench
	$(BIN)/medshare-bench -bin $(BIN)/medshare -out docs/PERFORMANCE.md $(BENCH_FLAGS)

## bench-quick: the reduced set in under 2 minutes; exits non-zero only when a c=1
## ratio falls below its target by more than the noise margin (-margin, default 15 %)
bench-quick: build
	$(GO) build -o $(BIN)/medshare-bench ./cmd/medshare-bench
	$(BIN)/medshare-bench -quick -gate -bin $(BIN)/medshare -out $(BIN)/PERFORMANCE-quick.md $(BENCH_FLAGS)
