#!/usr/bin/env bash
# Builds the test control plane (tools/k8stest: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler in one binary) and kwok into a cache directory keyed on this module's go.sum,
# and skips the build when both binaries are already there. Prints the directory on stdout:
#   export PAVED_K8STEST_BIN=$(tools/k8stest/build.sh)
# The cold build takes 5-10 min of CPU; it runs under nice so the machine stays usable.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
hash=$( (cat "$here/go.sum" "$here/build.sh"; echo kwok=v0.7.0) | sha256sum | cut -c1-16)
dir="${PAVED_K8STEST_CACHE:-$HOME/.cache/paved/k8stest}/$hash"

if [[ -x "$dir/k8stest" && -x "$dir/kwok" ]]; then
	echo "$dir"
	exit 0
fi

mkdir -p "$dir"
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v1.34.4 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=34"

if [[ ! -x "$dir/k8stest" ]]; then
	echo "k8stest: building the control plane into $dir (cold build: 5-10 min)" >&2
	(cd "$here" && nice -n 10 go build -trimpath -ldflags "$ldflags" -o "$dir/k8stest.tmp" .)
	mv "$dir/k8stest.tmp" "$dir/k8stest"
fi
if [[ ! -x "$dir/kwok" ]]; then
	echo "k8stest: building kwok v0.7.0 into $dir" >&2
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	GOBIN="$tmp" nice -n 10 go install -trimpath -ldflags "-s -w" sigs.k8s.io/kwok/cmd/kwok@v0.7.0
	mv "$tmp/kwok" "$dir/kwok"
fi
echo "$dir"
