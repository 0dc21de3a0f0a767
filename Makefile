# paved — `make test` runs every test on a fresh machine: it installs what the tests need
# (bubblewrap, as root) and checks formatting and vet first.
export GOTOOLCHAIN := local
export GOFLAGS := -buildvcs=false
GO ?= go

.PHONY: test deps check unit race build bench fuzz fuzz-ci ui ui-build kube-bins test-kube

test: deps check unit race kube-bins test-kube fuzz-ci ui

# Tools the tests need. Without root we cannot install; the sandbox tests then fall back to
# the process-group mode and say so.
deps:
	@if ! command -v bwrap >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "make: installing bubblewrap"; \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap) >/dev/null; \
		else echo "make: bubblewrap is not installed (apt-get install bubblewrap); sandbox tests will use process groups"; fi; \
	fi
	@if ! command -v prometheus >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "make: installing prometheus (the deploy analysis is tested against a real one)"; \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) >/dev/null; \
		else echo "make: prometheus is not installed (apt-get install prometheus); its deploy test will be skipped"; fi; \
	fi

check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './examples/*')); \
		if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# The Kubernetes packages need the control plane of tools/k8stest: test-kube runs them.
KUBE_PKGS := ./internal/kube/... ./internal/execute/kube/... ./internal/deploy/kube/...

unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v -e '/internal/kube' -e '/internal/execute/kube' -e '/internal/deploy/kube')

# The test control plane (kube-apiserver, controller-manager, scheduler, etcd) and kwok, built
# from the Go module proxy into a cache keyed on tools/k8stest/go.sum: 5-10 min of CPU the
# first time, nothing after.
kube-bins:
	@tools/k8stest/build.sh >/dev/null

# The executor and deploy target against a real API server (also under the race detector).
test-kube: kube-bins
	PAVED_K8STEST_BIN=$$(tools/k8stest/build.sh) $(GO) test -race -count=1 $(KUBE_PKGS)
	@# The server with --executor kubernetes, end to end (cmd/paved's test binary is built by unit).
	PAVED_K8STEST_BIN=$$(tools/k8stest/build.sh) $(GO) test -count=1 -run '^TestKube' ./cmd/paved

race:
	$(GO) test -race -count=1 ./internal/run/... ./internal/schedule/... ./internal/api/... ./internal/store/... ./internal/trigger/... ./internal/cache/... ./internal/cache/oci/... ./internal/gate/secrets/... ./internal/gate/sign/... $$($(GO) list ./internal/deploy/... | grep -v /kube) ./internal/insight/... ./internal/secret/... ./internal/audit/... ./internal/egress/...

build:
	$(GO) build -o bin/paved ./cmd/paved

bench: build
	$(GO) run ./bench/harness -paved bin/paved

# Every fuzz target, as FUNC:PACKAGE:SECONDS: every parser of outside input (webhooks, the
# pipeline file, reports, SBOM inputs, OSV, SARIF, API bodies, credentials, key files, URLs,
# config files). `make fuzz` runs each for its seconds; `make test` runs each for 2000
# inputs (fuzz-ci), so hostile input is fuzzed on every CI run. A count, not a duration: Go
# 1.26's fuzz coordinator can fail a target with "context deadline exceeded" when a
# duration ends mid-input (golang/go#75804, fixed in Go 1.27); a count has no deadline.
FUZZ_TARGETS := \
	FuzzCompile:./internal/pipeline:60 \
	FuzzNext:./internal/run:30 \
	FuzzParse:./internal/trigger/github:20 \
	FuzzParse:./internal/trigger/gitlab:20 \
	FuzzParse:./internal/trigger/bitbucket:20 \
	FuzzParse:./internal/trigger/generic:20 \
	FuzzManifests:./internal/trigger/stack:15 \
	FuzzParseBaseline:./internal/gate/secrets:15 \
	FuzzParse:./internal/gate/sbom:15 \
	FuzzDecode:./internal/gate/sbom:15 \
	FuzzParseRecord:./internal/gate/vuln:15 \
	FuzzParse:./internal/gate/sarif:15 \
	FuzzParseManifests:./internal/gate/policy:15 \
	FuzzParseEnvelope:./internal/gate/sign:15 \
	FuzzParseProvenance:./internal/gate/sign:15 \
	FuzzParse:./internal/insight/junit:15 \
	FuzzParse:./internal/insight/coverage:15 \
	FuzzParsePromValue:./internal/deploy:15 \
	FuzzRequestBodies:./internal/api:20 \
	FuzzCredentials:./internal/api:10 \
	FuzzMask:./internal/schedule:10 \
	FuzzParseKeyFile:./internal/secret:10 \
	FuzzCheckURL:./internal/egress:10 \
	FuzzParseRole:./internal/access:10 \
	FuzzParseOIDCMapping:./internal/access:10 \
	FuzzStepLog:./internal/execute/kube:15 \
	FuzzExtract:./internal/execute/kube:15 \
	FuzzSet:./internal/deploy/gitops:15 \
	FuzzDiff:./internal/forge:15 \
	FuzzParseConfig:./internal/promote:15
FUZZTIME ?=

# The kube packages' TestMain starts the test control plane, also before fuzzing.
fuzz: kube-bins
	@export PAVED_K8STEST_BIN=$$(tools/k8stest/build.sh); \
	for t in $(FUZZ_TARGETS); do \
		f=$${t%%:*}; rest=$${t#*:}; p=$${rest%%:*}; s=$${rest#*:}; \
		echo "fuzz $$f $$p"; \
		out=$$($(GO) test -run='^$$' -fuzz='^'$$f'$$' -fuzztime=$(if $(FUZZTIME),$(FUZZTIME),$${s}s) $$p 2>&1) || \
			{ echo "$$out" | tail -40; echo "make: $$f in $$p failed (the input is in $$p/testdata/fuzz/$$f)"; exit 1; }; \
	done

fuzz-ci:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=2000x

# The web UI (web/): its unit tests (vitest) and the end-to-end test in headless Chromium
# against a real paved server (node --test web/e2e). Installs Debian's chromium and web/'s
# npm packages when root and missing; without them, and outside CI, it skips and says why.
UI_OUT ?= web/test-output
ui:
	@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "make: installing chromium for the UI tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null; \
	fi
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
		if [ -n "$$CI" ]; then echo "make ui: chromium and node/npm are required in CI (apt-get install chromium; Node >= 20.19)"; exit 1; fi; \
		echo "make ui: SKIPPED: the UI tests need chromium (apt-get install chromium) and Node >= 20.19 with npm"; \
	else \
		if [ ! -f web/node_modules/.package-lock.json ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then \
			echo "make: npm ci in web/"; (cd web && npm ci --no-audit --no-fund --loglevel=error) || exit 1; \
		fi; \
		mkdir -p $(UI_OUT) && $(GO) build -o $(UI_OUT)/paved ./cmd/paved && \
		(cd web && npx vitest run) && \
		(cd web && PAVED_BIN=$(abspath $(UI_OUT))/paved UI_OUT=$(abspath $(UI_OUT)) node --test e2e/) && \
		echo "make ui: screenshots in $(UI_OUT)/screenshots"; \
	fi

# Rebuild the UI's committed assets (web/dist) after changing anything under web/.
ui-build:
	cd web && ([ -d node_modules ] || npm ci --no-audit --no-fund) && npm run build
