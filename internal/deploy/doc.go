// Package deploy is layer 4 of paved: it takes an artifact from a run (by digest) to an
// environment with a strategy, judges it with an analysis, verifies it, and rolls it back
// when any of that fails. Every deployment is recorded in the history (the store) so that
// any earlier one can be redeployed.
//
// The Controller owns the environments (on the local target: a proxy and its replicas, see
// package local) and runs one deployment per environment at a time. Strategies:
//
//   - rolling: replace replicas a few at a time (max_surge, max_unavailable), each new one
//     ready before an old one is drained; a replica not ready in time rolls back.
//   - blue-green: start green beside blue behind a preview port, smoke-test it there,
//     switch the proxy in one swap, keep blue warm for instant rollback.
//   - canary: steps of traffic weight; a baseline of the stable version gets the same
//     share as the canary, so the analysis compares like with like (Kayenta's method).
//
// The analysis speaks Argo Rollouts' vocabulary: each step takes `count` measurements, one
// per `interval`; more than `failure_limit` failed measurements fail it, more than
// `consecutive_error_limit` errors of the metric source in a row fail it, and a measurement
// with fewer than `min_samples` requests is inconclusive: the deployment pauses where it
// is and keeps measuring, and never promotes on no data. A failure rolls back at once: the
// canary's weight goes to 0 in one swap of the proxy's table, before anything is written.
//
// Metric sources sit behind one interface (Source): the proxy's own counters, or
// Prometheus over its HTTP API.
package deploy
