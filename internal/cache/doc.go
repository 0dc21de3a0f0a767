// Package cache keeps what outlives a stage's workspace: the lockfile-keyed dependency cache
// (Cache) and the content-addressed store that artifacts pass through between stages (Blobs).
//
// # Blobs
//
// A Blobs is a directory of files named by the SHA-256 of their bytes, DIR/sha256/<hex>. A
// blob is written to DIR/tmp while it is hashed, then hard-linked into place: a digest that
// is there already is never written twice, and a reader never sees half a blob. Blobs are
// immutable once named.
//
// # The dependency cache
//
// An entry is a gzip-compressed tar of a stage's cache paths, stored as a blob, and an index
// file that names it: DIR/index/<bucket>/<key>.json, where the bucket is a hash of the scope
// (which branch wrote it) and the namespace (repository, pipeline, stage, OS/arch, paths).
// Entries are immutable, as in GitHub Actions: a key is saved once, and a stage saves only when
// its restore was not an exact hit.
//
// Keys are "<key or stage>-<hash>", the hash covering the namespace and the contents of the
// key files, so the key changes exactly when a lockfile does. Restore looks, in each readable
// scope in order (the run's own branch, then the default branch): the exact key, then for
// each restore key the newest entry whose key starts with it. An exact match is a hit, a
// prefix match partial, nothing a miss.
//
// Scopes stop cache poisoning: a pull request writes to a scope of its own and can only read
// the default branch's, so what a pull request's steps leave in the cache paths never reaches
// a build of the default branch.
//
// A restore extracts into a staging directory inside the workspace while it hashes the blob,
// and moves the paths into place only when the digest matched: a corrupted or truncated
// entry is never restored; it is removed from the index and the next candidate is tried.
// Everything written into or read from a workspace goes through os.Root and symlinks are
// archived as symlinks, so neither a step nor a repository can steer the cache onto a host
// file.
//
// Saving writes the blob outside any lock; committing it (link the blob, link the index file,
// evict) happens under an flock on DIR/lock, so concurrent saves of one key in this or
// another paved process leave exactly one entry and no orphan blob. Eviction keeps the sum
// of blob sizes under Config.MaxBytes by removing the least recently used entries (an index
// file's modification time is its last use) and the blobs nothing names any more.
package cache
