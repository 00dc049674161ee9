# polyroot — `make demo` tells the story, `make test` runs every test.
GO        ?= go
FUZZTIME  ?= 3s
# Where slow one-time builds of external servers are cached, outside the source tree.
TOOLCACHE ?= $(HOME)/.cache/polyroot/bin
STATICCHECK_VERSION := v0.8.2
# Pinned Vault server for the keystore integration tests (see deploy/build/vault/go.mod).
VAULT_VERSION := v1.21.0
VAULT_BIN     := $(TOOLCACHE)/vault-$(VAULT_VERSION)
# go-ethereum: the library version in go.mod, abigen for the ledger bindings, and the geth
# binary for integration tests are all this one version (v1.17.9+ do not resolve here).
GETH_VERSION := v1.17.8
GETH_BIN     := $(TOOLCACHE)/geth-$(GETH_VERSION)
# Pinned Solidity compiler: the npm package solc, exact version in ledger/contracts/package-lock.json.
SOLC_VERSION  := 0.8.37
CONTRACTS_DIR := ledger/contracts
# Under make, integration tests fail instead of skipping when a binary is missing
# (internal/testbin), and find the pinned binaries here.
INTEGRATION_ENV := POLYROOT_INTEGRATION=1 POLYROOT_VAULT_BIN=$(VAULT_BIN) POLYROOT_GETH_BIN=$(GETH_BIN)
# Packages with goroutines or shared state, run again under the race detector.
RACE_PKGS := ./pairing/... ./dta/... ./server/... ./client/... ./internal/...

.PHONY: build test unit race fuzz-short fuzz bench lint demo vectors vault geth node solc contracts postgres chromium

# `polyroot version` names this build: the checkout's `git describe` (this machine builds
# with -buildvcs=false, and a container build has no .git), set at link time.
VERSION ?= $(shell git describe --always --dirty 2>/dev/null)
LDFLAGS := $(if $(VERSION),-X github.com/polyroot/polyroot/internal/cli.buildVersion=$(VERSION))

# The browser client is built without inlining outside its cryptography: 7% smaller
# (internal/wasmclient/build.go; TestBuildFlagsShipped keeps the two in step).
WASM_GCFLAGS := -gcflags=all=-l -gcflags=github.com/cloudflare/circl/...= -gcflags=crypto/...= -gcflags=github.com/polyroot/polyroot/pairing= -gcflags=math/...=

build:
	CGO_ENABLED=0 $(GO) build ./...
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o bin/polyroot ./cmd/polyroot
	GOOS=js GOARCH=wasm $(GO) build -trimpath -ldflags='-s -w' $(WASM_GCFLAGS) -o bin/polyroot.wasm ./cmd/polyroot-wasm
	cp "$$($(GO) env GOROOT)/lib/wasm/wasm_exec.js" bin/wasm_exec.js

## test: everything CI runs — vet, unit/property/known-answer tests, race detector, short fuzz runs.
test: build vault geth node solc postgres chromium
	$(GO) vet ./...
	$(MAKE) unit race fuzz-short

unit:
	$(INTEGRATION_ENV) $(GO) test -count=1 ./...

race:
	$(INTEGRATION_ENV) $(GO) test -race -count=1 $(RACE_PKGS)

# Each fuzz target for FUZZTIME (a few seconds in `make test`, longer with `make fuzz`).
# No minimisation: on two cores it stalls short runs; a crasher is kept as found.
# Go 1.26's fuzz coordinator can fail a run with a bare "context deadline exceeded" as
# FUZZTIME ends on a loaded machine (go.dev/issue/75804, fixed in Go 1.27): such a run,
# with no failing input written, is run once more; any other failure fails at once.
fuzz-short:
	@set -e; log=$$(mktemp); trap 'rm -f $$log' EXIT; \
	for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    for try in 1 2; do \
	      echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	      if $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 0 $$pkg >$$log 2>&1; then cat $$log; break; fi; \
	      cat $$log; \
	      if [ $$try = 2 ] || ! grep -q 'context deadline exceeded' $$log || grep -q 'Failing input written' $$log; then exit 1; fi; \
	      echo "fuzz $$f: the coordinator's deadline race (go.dev/issue/75804), no failing input: once more"; \
	    done; \
	  done; \
	done

fuzz:
	$(MAKE) fuzz-short FUZZTIME=60s

## bench: benchmarks on one core, six runs of each; compare ratios within one run.
bench:
	GOMAXPROCS=1 $(GO) test -run '^$$' -bench . -benchmem -count 6 ./bench/ | tee bench.txt

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

## vault: the pinned Vault server for integration tests, built once (≈25 min cold, ≈500 MB)
## from its own build module, outside polyroot's dependency graph, into the tool cache.
vault:
	@test -x $(VAULT_BIN) || { \
	  echo "building Vault $(VAULT_VERSION) into $(VAULT_BIN) (once; about 25 minutes)"; \
	  mkdir -p $(TOOLCACHE) && \
	  cd deploy/build/vault && \
	  GOFLAGS=-mod=mod $(GO) build -trimpath -o $(VAULT_BIN).tmp github.com/hashicorp/vault && \
	  mv $(VAULT_BIN).tmp $(VAULT_BIN); \
	}

## node: Node.js and npm, for solc (below) and for running the browser client's
## WebAssembly tests (internal/wasmclient): Debian's nodejs and npm packages, installed
## when node or npm is not on PATH.
node:
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { \
	  echo "installing Debian's nodejs and npm packages (apt-get) for solc and the WebAssembly tests"; \
	  sudo=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$sudo apt-get update -q && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm; \
	}

## solc: the pinned solc npm package, installed from the committed lock into
## ledger/contracts/node_modules (git-ignored) when it is missing or another version.
solc: node
	@node -e 'process.exit(require("./$(CONTRACTS_DIR)/node_modules/solc/package.json").version === "$(SOLC_VERSION)" ? 0 : 1)' 2>/dev/null || { \
	  echo "installing solc $(SOLC_VERSION) into $(CONTRACTS_DIR)/node_modules (npm ci)"; \
	  cd $(CONTRACTS_DIR) && npm ci --no-audit --no-fund; \
	}

## contracts: recompile IssuanceLog.sol (ledger/contracts/IssuanceLog.json) and regenerate its
## Go bindings (ledger/issuancelog.go); review the diff and commit both with the source.
contracts: solc
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  node $(CONTRACTS_DIR)/compile.js --abigen "$$tmp" && \
	  $(GO) run github.com/ethereum/go-ethereum/cmd/abigen@$(GETH_VERSION) --v2 --pkg ledger --type IssuanceLog \
	    --abi "$$tmp/IssuanceLog.abi" --bin "$$tmp/IssuanceLog.bin" --out ledger/issuancelog.go && \
	  printf '\n//lint:file-ignore ST1005 abigen writes errors.New("Unknown error"); this line is added by make contracts\n' >> ledger/issuancelog.go

## geth: the pinned go-ethereum node for the ledger's integration tests (geth --dev),
## built once (about 4 minutes) into the tool cache; the same version as the library.
geth:
	@test -x $(GETH_BIN) || { \
	  echo "building geth $(GETH_VERSION) into $(GETH_BIN) (once; about 4 minutes)"; \
	  mkdir -p $(TOOLCACHE)/geth-build && \
	  GOBIN=$(TOOLCACHE)/geth-build $(GO) install github.com/ethereum/go-ethereum/cmd/geth@$(GETH_VERSION) && \
	  mv $(TOOLCACHE)/geth-build/geth $(GETH_BIN); \
	}

## postgres: PostgreSQL's initdb and postgres for the state store's integration tests
## (internal/testbin starts a throw-away cluster): Debian's postgresql package, installed
## when initdb is on neither PATH nor Debian's /usr/lib/postgresql/*/bin.
postgres:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "installing Debian's postgresql package (apt-get) for the PostgreSQL store tests"; \
	  sudo=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$sudo apt-get update -q && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql; \
	}

## chromium: a headless browser for the login page's tests (internal/browsertest drives it
## with chromedp; internal/testbin finds it): Debian's chromium package, installed when
## /usr/bin/chromium is missing and no chromium is on PATH.
chromium:
	@test -x /usr/bin/chromium || command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium package (apt-get) for the browser tests"; \
	  sudo=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$sudo apt-get update -q && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; \
	}

demo:
	$(GO) run ./cmd/polyroot demo

## vectors: regenerate the known-answer transcripts and the trust-bundle known answer
## (review the diff before committing).
vectors:
	$(GO) test ./pairing -run '^TestKnownAnswer$$' -count=1 -update
	$(GO) test ./internal/bundle -run '^TestBundleKnownAnswer$$' -count=1 -update
