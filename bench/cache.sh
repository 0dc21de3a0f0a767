#!/bin/sh
# Cold vs warm dependency cache, side by side in one invocation: `paved run` of a pipeline
# that builds and test-compiles this repository (go build ./... and go test -run XXX ./...)
# with GOMODCACHE and GOCACHE under cached paths. Cold: an empty data dir, so every module
# is downloaded and every package compiled, then the caches are saved. Warm: the same data
# dir, so both caches are restored before the first step. -trimpath: every run has its own
# workspace path, which Go's build cache otherwise keys on (see docs/cache.md).
#
# Usage: bench/cache.sh [PAVED_BINARY] [SANDBOX]   (from the repository's top; default bin/paved, auto)
# The source is a clone of HEAD, so uncommitted work in the tree does not change the figures.
set -eu
paved=$(realpath "${1:-bin/paved}")
sandbox=${2:-auto}
work=$(mktemp -d /tmp/paved-cache-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
git clone --quiet --shared . "$work/src"
cat > "$work/pipeline.yml" <<'YAML'
name: paved-cache-bench
stages:
  build:
    cache:
      - key: go
        key_files: [go.sum]
        paths: [.gomod, .gocache]
        restore_keys: [go-]
    steps:
      - name: build
        run: GOTOOLCHAIN=local GOFLAGS='-buildvcs=false -trimpath' GOMODCACHE=$PWD/.gomod GOCACHE=$PWD/.gocache go build ./...
      - name: test-compile
        run: GOTOOLCHAIN=local GOFLAGS='-buildvcs=false -trimpath' GOMODCACHE=$PWD/.gomod GOCACHE=$PWD/.gocache go test -run XXX ./...
YAML
ms() { date +%s%3N; }
timed() { # label data-dir
	start=$(ms)
	(cd "$work/src" && "$paved" run --sandbox "$sandbox" --data "$2" --file "$work/pipeline.yml" --events "$work/$1.events" >"$work/$1.log" 2>&1) ||
		{ cat "$work/$1.log"; exit 1; }
	end=$(ms)
	echo "$1 $((end - start))"
	grep -h '"Cache' "$work/$1.events" | sed 's/.*"type":"\(Cache[A-Za-z]*\)".*"duration_ms":\([0-9]*\).*"status":"\([a-z]*\)".*/  \1 \3 \2 ms/' 
	grep -h '"StepFinished' "$work/$1.events" | sed 's/.*"step_name":"\([^"]*\)".*"duration_ms":\([0-9]*\).*/  step \1 \2 ms/'
}
echo "machine: $(nproc) CPUs, $(go version | cut -d' ' -f3), sandbox $sandbox"
timed cold "$work/data"
du -sh "$work/data/cache" | sed 's/^/  stored: /'
timed warm "$work/data"
timed warm2 "$work/data"
