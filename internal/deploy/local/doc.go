// Package local is the local deploy target: an environment is a port on this machine served
// by paved's own reverse proxy (net/http/httputil), in front of replicas that are processes
// started from the deployed artifact with PORT set, as Kamal does on a VM. The proxy splits
// traffic between pools of replicas by weight (stable, canary, baseline, green) with one
// atomic swap of its routing table, retries a request whose connection to a replica could
// not be made on another ready replica, and keeps per-pool and per-version request metrics
// (count, 5xx, latency histogram). Replicas are probed over HTTP with Kubernetes semantics
// (startup, readiness, liveness), restarted when they crash or fail liveness, and sampled for
// RSS from /proc.
//
// Nothing here decides: strategies and analysis (package deploy) start replicas, wait for
// them, set weights and read metrics.
package local
