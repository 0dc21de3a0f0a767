# paved — `make test` runs every test on a fresh machine: it installs what the tests need
# (bubblewrap, as root) and checks formatting and vet first.
export GOTOOLCHAIN := local
export GOFLAGS := -buildvcs=false
GO ?= go

.PHONY: test deps check unit race build bench fuzz

test: deps check unit race

# Tools the tests need. Without root we cannot install; the sandbox tests then fall back to
# the process-group mode and say so.
deps:
	@if ! command -v bwrap >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "make: installing bubblewrap"; \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap) >/dev/null; \
		else echo "make: bubblewrap is not installed (apt-get install bubblewrap); sandbox tests will use process groups"; fi; \
	fi

check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './examples/*')); \
		if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -count=1 ./...

race:
	$(GO) test -race -count=1 ./internal/run/... ./internal/schedule/... ./internal/api/... ./internal/store/... ./internal/trigger/... ./internal/cache/... ./internal/cache/oci/... ./internal/gate/secrets/...

build:
	$(GO) build -o bin/paved ./cmd/paved

bench: build
	$(GO) run ./bench/harness -paved bin/paved

fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzCompile -fuzztime=60s ./internal/pipeline
	$(GO) test -run='^$$' -fuzz=FuzzNext -fuzztime=30s ./internal/run
	for p in github gitlab bitbucket generic; do \
		$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=20s ./internal/trigger/$$p || exit 1; done
	$(GO) test -run='^$$' -fuzz=FuzzParseBaseline -fuzztime=15s ./internal/gate/secrets
	for f in FuzzParse FuzzDecode; do \
		$(GO) test -run='^$$' -fuzz=$$f -fuzztime=15s ./internal/gate/sbom || exit 1; done
	$(GO) test -run='^$$' -fuzz=FuzzParseRecord -fuzztime=15s ./internal/gate/vuln
	$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=15s ./internal/gate/sarif
	$(GO) test -run='^$$' -fuzz=FuzzParseManifests -fuzztime=15s ./internal/gate/policy
