// Package workspace is a stage's files on a machine's disk: Source fills an empty
// workspace from the run's source (a git checkout or a copied directory), Materialise
// writes the artifacts of upstream stages into it from a blob store, StoreArtifacts keeps
// what the stage's artifact globs match by digest, and Reports reads its test reports.
// The local executor uses it around the sandbox; the Kubernetes executor uses it on the
// server, to build the workspace a pod fetches and to take in what a pod sends back.
package workspace
