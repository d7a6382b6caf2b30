# lpmtls — build, test and run. `make help` lists the targets.
GO          ?= go
FUNCTIONS   := forward mapping
GOARCH_LAMBDA := arm64
LAMBDA_ENV  := CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH_LAMBDA)
LAMBDA_FLAGS := -tags lambda.norpc -trimpath -ldflags "-s -w"
BUILD_DIR   := .build

.PHONY: help deps build cli test lint run bench fuzz reliability load clean $(FUNCTIONS:%=build-%) build-ForwardFunction build-MappingFunction

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

build: $(FUNCTIONS:%=build-%) ## build every function's bootstrap for provided.al2023/arm64 into .build/<fn>/
	@ls -l $(BUILD_DIR)/*/bootstrap

cli: ## build the lpmtls command line tool for this machine into .build/lpmtls
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BUILD_DIR)/lpmtls ./cmd/lpmtls
	@echo "built $(BUILD_DIR)/lpmtls; try $(BUILD_DIR)/lpmtls --help"

$(FUNCTIONS:%=build-%): build-%:
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(BUILD_DIR)/$*/bootstrap ./functions/$*

# `sam build` (BuildMethod: makefile) calls build-<LogicalId> with ARTIFACTS_DIR set.
build-ForwardFunction:
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/forward
build-MappingFunction:
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/mapping

test: deps ## run every test with the race detector (installs what the tests need first)
	$(GO) test -race -count=1 -timeout 15m ./...

deps: node_modules/.package-lock.json ## Go modules, and the SQS emulator (fauxqs on Node 22) from npm, pinned in package-lock.json
	$(GO) mod download

# npm ci only when the pins changed, so an up-to-date tree needs no network. npm writes
# node_modules/.package-lock.json itself; the touch makes it newer than its sources.
node_modules/.package-lock.json: package-lock.json package.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# staticcheck is a tool of the module (go.mod's tool line): its version is pinned there
# and its sums in go.sum, so a clean machine needs only the module proxy.
lint: ## go vet, staticcheck and gofmt
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

BENCH_OUT := $(BUILD_DIR)/bench.txt

bench: deps ## benchmarks against the simulator on loopback (about a minute); prints a markdown table
	@mkdir -p $(BUILD_DIR); : > $(BENCH_OUT); rc=0; \
	echo "running benchmarks (about a minute); raw output in $(BENCH_OUT)"; \
	$(GO) test -run '^$$' -bench 'WarmForward|ForwardMetrics|LargeBody|AuthCalls|^BenchmarkInvoke$$|DecodeEncode' -benchmem -benchtime 2s -timeout 10m ./bench >> $(BENCH_OUT) 2>&1 || rc=1; \
	$(GO) test -run '^$$' -bench 'LoginStorm|ColdStart|ColdInvoke|BinarySize|SQSBatch' -benchmem -benchtime 10x -timeout 10m ./bench >> $(BENCH_OUT) 2>&1 || rc=1; \
	$(GO) test -run '^$$' -bench 'WarmInvoke' -benchmem -benchtime 1000x -timeout 10m ./bench >> $(BENCH_OUT) 2>&1 || rc=1; \
	$(GO) test -run '^$$' -bench 'WarmPath' -benchtime 100x -timeout 20m ./bench >> $(BENCH_OUT) 2>&1 || rc=1; \
	$(GO) test -run '^$$' -bench 'VersusNode/warm' -benchtime 200x -timeout 10m ./bench >> $(BENCH_OUT) 2>&1 || rc=1; \
	$(GO) test -run '^$$' -bench 'VersusNode/cold' -benchtime 10x -timeout 10m ./bench >> $(BENCH_OUT) 2>&1 || rc=1; \
	$(GO) run ./bench/cmd/benchtable < $(BENCH_OUT) 2>/dev/null; \
	if [ $$rc -ne 0 ]; then echo "a benchmark failed: see $(BENCH_OUT)"; fi; exit $$rc

# splice replaces what lies between the lines <!-- $(1):begin --> and <!-- $(1):end -->
# of RELIABILITY.md with the file $(2).
splice = awk -v f="$(2)" 'index($$0, "<!-- $(1):begin -->") { print; while ((getline l < f) > 0) print l; skip = 1; next } \
	index($$0, "<!-- $(1):end -->") { skip = 0 } !skip' RELIABILITY.md > RELIABILITY.md.tmp && mv RELIABILITY.md.tmp RELIABILITY.md

reliability: deps ## run the fault matrix (also part of make test) and write it into RELIABILITY.md
	@mkdir -p $(BUILD_DIR)
	LPMTLS_RELIABILITY_OUT=$(abspath $(BUILD_DIR))/fault-matrix.md $(GO) test -race -count=1 -timeout 10m -run '^TestFaultMatrix$$' ./e2e/faultmatrix
	@$(call splice,fault-matrix,$(BUILD_DIR)/fault-matrix.md)
	@echo "RELIABILITY.md: fault matrix updated"

load: deps ## the load run (about a minute; not in make test): 4 bootstraps, 5,000 forwards under faults; prints its table and writes it into RELIABILITY.md
	@mkdir -p $(BUILD_DIR)
	LPMTLS_LOAD=1 LPMTLS_LOAD_OUT=$(abspath $(BUILD_DIR))/load.md $(GO) test -count=1 -timeout 20m -v -run '^TestLoad$$' ./bench/load
	@{ echo; echo "Run of $$(date -u +%Y-%m-%d) on $$(nproc) cores ($$(uname -m)), $$($(GO) env GOVERSION):"; echo; cat $(BUILD_DIR)/load.md; } > $(BUILD_DIR)/load-doc.md
	@$(call splice,load-run,$(BUILD_DIR)/load-doc.md)
	@echo "RELIABILITY.md: load table updated"

FUZZTIME ?= 30s

fuzz: ## run every fuzz target in turn for FUZZTIME each (default 30s); prints a table, logs in .build/fuzz/
	@bash .ci/fuzz $(FUZZTIME)

ARGS ?=

# The binary replaces the recipe's shell (exec) and exits 0 on Ctrl-C, so an interrupt
# is a clean stop rather than `go run`'s exit status 1 and make's "Error 1".
run: ## start the local API on 127.0.0.1:3000 (sandbox unless LivePerson credentials are set); flags via ARGS="-addr host:port"
	@test -x $(BUILD_DIR)/local || echo "building the local API; the first build takes a minute or two"
	@CGO_ENABLED=0 $(GO) build -o $(BUILD_DIR)/local ./cmd/local
	@exec $(BUILD_DIR)/local $(ARGS)

clean: ## remove build outputs
	rm -rf $(BUILD_DIR) .aws-sam
