# polyroot — `make demo` tells the story, `make test` runs every test.
GO        ?= go
FUZZTIME  ?= 3s
# Where slow one-time builds of external servers are cached, outside the source tree.
TOOLCACHE ?= $(HOME)/.cache/polyroot/bin
STATICCHECK_VERSION := v0.8.2
# Packages with goroutines or shared state, run again under the race detector.
RACE_PKGS := ./pairing/...

.PHONY: build test unit race fuzz-short fuzz bench lint demo vectors

build:
	CGO_ENABLED=0 $(GO) build ./...

## test: everything CI runs — vet, unit/property/known-answer tests, race detector, short fuzz runs.
test: build
	$(GO) vet ./...
	$(MAKE) unit race fuzz-short

unit:
	$(GO) test -count=1 ./...

race:
	$(GO) test -race -count=1 $(RACE_PKGS)

# Each fuzz target for FUZZTIME (a few seconds in `make test`, longer with `make fuzz`).
# No minimisation: on two cores it stalls short runs; a crasher is kept as found.
fuzz-short:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 0 $$pkg; \
	  done; \
	done

fuzz:
	$(MAKE) fuzz-short FUZZTIME=60s

## bench: benchmarks on one core, six interleaved runs; compare ratios within one run.
bench:
	GOMAXPROCS=1 $(GO) test -run '^$$' -bench . -benchmem -count 6 ./bench/ | tee bench.txt

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

demo:
	$(GO) run ./cmd/polyroot demo

## vectors: regenerate the known-answer transcripts (review the diff before committing).
vectors:
	$(GO) test ./pairing -run '^TestKnownAnswer$$' -count=1 -update
