# lpmtls — build, test and run. `make help` lists the targets.
GO          ?= go
FUNCTIONS   := forward mapping
GOARCH_LAMBDA := arm64
LAMBDA_ENV  := CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH_LAMBDA)
LAMBDA_FLAGS := -tags lambda.norpc -trimpath -ldflags "-s -w"
BUILD_DIR   := .build

.PHONY: help deps build test lint run bench run clean $(FUNCTIONS:%=build-%) build-ForwardFunction build-MappingFunction

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

build: $(FUNCTIONS:%=build-%) ## build every function's bootstrap for provided.al2023/arm64 into .build/<fn>/
	@ls -l $(BUILD_DIR)/*/bootstrap

$(FUNCTIONS:%=build-%): build-%:
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(BUILD_DIR)/$*/bootstrap ./functions/$*

# `sam build` (BuildMethod: makefile) calls build-<LogicalId> with ARTIFACTS_DIR set.
build-ForwardFunction:
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/forward
build-MappingFunction:
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/mapping

test: deps ## run every test with the race detector (installs what the tests need first)
	$(GO) test -race -count=1 -timeout 15m ./...

deps: ## Go modules, and the SQS emulator (fauxqs on Node 22) from npm, pinned in package-lock.json
	$(GO) mod download
	npm ci --no-audit --no-fund --loglevel=error

lint: ## go vet and gofmt
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

ARGS ?=

run: ## start the local API on 127.0.0.1:3000 (sandbox unless LivePerson credentials are set); flags via ARGS="-addr host:port"
	$(GO) run ./cmd/local $(ARGS)

clean: ## remove build outputs
	rm -rf $(BUILD_DIR) .aws-sam
