// Package oci is paved's artifact store in OCI form: the embedded registry that `paved server`
// serves at /v2/ (the OCI distribution API, so crane, oras, docker, podman and
// go-containerregistry's remote client can push and pull), and the client side that publishes
// build outputs to it — file artifacts ORAS-style (Push, Pull) and container images built
// without a Docker engine, ko-style (Build).
//
// Storage, under Config.Dir:
//
//	blobs/sha256/<hex>                                   every blob and manifest, once per digest
//	repositories/<name>/_manifests/revisions/sha256/<hex> the manifest is in this repository; holds its media type
//	repositories/<name>/_manifests/tags/<tag>             the digest the tag points at, written once
//	repositories/<name>/_manifests/referrers/sha256-<subject>/sha256-<hex>  OCI 1.1 referrers index
//
// Blob uploads (POST/PATCH/PUT) are go-containerregistry's pkg/registry, given this package's
// disk store; manifests, tags, the catalog and referrers are this package's own, because that
// registry keeps manifests in memory (lost on restart) and lets a tag move.
//
// Tags are immutable: the first push of a tag wins, a push of the same digest again succeeds
// (so a retried publish is harmless), a different digest under the tag is refused with 409
// and an OCI error body (code DENIED) that says to push a new tag or refer by digest. Nothing is
// deleted through the API: a deployment that names a digest can always pull it again.
//
// Artifacts are built to be reproducible — no timestamps in what Push and Build write — so
// publishing the same files or binary twice yields the same digest, and the retry passes the
// immutable-tag check.
package oci
