package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paved/paved/internal/deploy/local"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// EnvironmentStatus is an environment now: where it listens, what it serves, the traffic
// split and what the proxy saw, and the deployment in progress or last made.
type EnvironmentStatus struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// Stable is the deployment it serves; nil while it serves nothing.
	Stable *store.Deployment `json:"stable,omitempty"`
	Pools  []PoolStatus      `json:"pools"`
	// Deploying says a deployment holds the environment; Live is its latest step.
	Deploying bool                     `json:"deploying"`
	Live      *run.Deployment          `json:"live,omitempty"`
	Metrics   map[string]local.Summary `json:"metrics"`        // cumulative, by track
	Versions  map[string]local.Summary `json:"versions"`       // cumulative, by version
	Warm      string                   `json:"warm,omitempty"` // version kept warm by blue-green
}

// PoolStatus is one pool of the proxy's routing table.
type PoolStatus struct {
	Name     string                `json:"name"`
	Weight   int                   `json:"weight"`
	Replicas []local.ReplicaStatus `json:"replicas"`
}

// Environments lists the environments this controller serves, by name.
func (c *Controller) Environments() []EnvironmentStatus {
	c.mu.Lock()
	names := make([]string, 0, len(c.envs))
	for n := range c.envs {
		names = append(names, n)
	}
	c.mu.Unlock()
	sort.Strings(names)
	out := []EnvironmentStatus{}
	for _, n := range names {
		if st, err := c.Status(n); err == nil {
			out = append(out, st)
		}
	}
	return out
}

// Status is one environment now, or ErrUnknownEnvironment.
func (c *Controller) Status(name string) (EnvironmentStatus, error) {
	c.mu.Lock()
	env, ok := c.envs[name]
	c.mu.Unlock()
	if !ok {
		return EnvironmentStatus{}, fmt.Errorf("%w %q", ErrUnknownEnvironment, name)
	}
	st := EnvironmentStatus{Name: name, URL: env.proxy.URL(), Pools: []PoolStatus{},
		Metrics: map[string]local.Summary{}, Versions: map[string]local.Summary{}}
	env.mu.Lock()
	if env.stable != nil {
		rec := env.stable.rec
		st.Stable = &rec
	}
	if env.live != nil {
		live := *env.live
		st.Live = &live
	}
	if env.warm != nil {
		st.Warm = env.warm.rec.Version
	}
	env.mu.Unlock()
	st.Deploying = len(env.sem) > 0
	for _, p := range env.proxy.Pools() {
		ps := PoolStatus{Name: p.Name, Weight: p.Weight, Replicas: []local.ReplicaStatus{}}
		for _, r := range p.Replicas {
			ps.Replicas = append(ps.Replicas, r.Status())
		}
		st.Pools = append(st.Pools, ps)
	}
	for k, v := range env.proxy.Metrics() {
		st.Metrics[k] = v.Summary()
	}
	for k, v := range env.proxy.VersionMetrics() {
		st.Versions[k] = v.Summary()
	}
	return st, nil
}

// RollbackParams asks to redeploy an earlier deployment of Environment: To (a deployment
// id), or by default the last successful one before the deployment it serves now.
type RollbackParams struct {
	Environment string
	To          string
	By          string // who asked, for the history
}

// Rollback redeploys an earlier recorded deployment: its artifact with its settings, as a
// rolling update of all replicas at once (or, while blue-green keeps that release warm, by
// switching back to it). It returns the new deployment's record.
func (c *Controller) Rollback(ctx context.Context, p RollbackParams, rep Reporter) (store.Deployment, error) {
	h := c.cfg.History
	var target store.Deployment
	if p.To != "" {
		d, err := h.DeploymentGet(ctx, p.To)
		if err != nil {
			return store.Deployment{}, err
		}
		if d.Environment != p.Environment {
			return store.Deployment{}, fmt.Errorf("%w: deployment %s is of environment %s, not %s", ErrBadRequest, p.To, d.Environment, p.Environment)
		}
		if d.Outcome == store.DeploymentInProgress {
			return store.Deployment{}, fmt.Errorf("%w: deployment %s is still in progress", ErrBadRequest, p.To)
		}
		target = d
	} else {
		list, err := h.DeploymentList(ctx, store.DeploymentListParams{Environment: p.Environment, Outcome: store.DeploymentSucceeded, Limit: 1000})
		if err != nil {
			return store.Deployment{}, err
		}
		if len(list) == 0 {
			return store.Deployment{}, fmt.Errorf("%w %q", ErrUnknownEnvironment, p.Environment)
		}
		current := ""
		if st, err := c.Status(p.Environment); err == nil && st.Stable != nil {
			current = st.Stable.Artifact + st.Stable.ConfigHash
		}
		for _, d := range list {
			if d.Artifact+d.ConfigHash != current {
				target = d
				break
			}
		}
		if target.ID == "" {
			return store.Deployment{}, fmt.Errorf("%w: %s has no earlier successful deployment of another version", ErrNothingToRollBack, p.Environment)
		}
	}
	var spec Spec
	if err := json.Unmarshal(target.Config, &spec); err != nil {
		return store.Deployment{}, fmt.Errorf("deploy: deployment %s: stored config: %w", target.ID, err)
	}
	if c.switchToWarm(p.Environment, target) {
		spec.Strategy = BlueGreen
	} else {
		spec.Strategy, spec.MaxSurge, spec.MaxUnavailable = Rolling, "100%", "0"
	}
	spec.SLOWindow = 0
	by := p.By
	if by == "" {
		by = "rollback"
	}
	return c.Deploy(ctx, Request{Spec: spec, Artifact: target.Artifact, TriggeredBy: by, RollbackOf: target.ID,
		RunID: target.RunID, Stage: target.Stage, Repo: target.Repo, SHA: target.SHA}, rep)
}

// switchToWarm reports whether blue-green keeps target's release warm in env; the next
// blue-green deploy of it starts fresh replicas anyway, so this only decides the strategy
// whose switch is instant.
func (c *Controller) switchToWarm(name string, target store.Deployment) bool {
	c.mu.Lock()
	env, ok := c.envs[name]
	c.mu.Unlock()
	if !ok {
		return false
	}
	env.mu.Lock()
	defer env.mu.Unlock()
	return env.warm != nil && env.warm.rec.Artifact == target.Artifact
}

// Describe sends nothing: the metrics are unchecked, their label values change with the
// environments.
func (c *Controller) Describe(chan<- *prometheus.Desc) {}

var (
	descRequests = prometheus.NewDesc("paved_deploy_requests_total",
		"Requests the environment's proxy served, by track (stable, canary, baseline) and status class (5xx or ok).",
		[]string{"environment", "track", "class"}, nil)
	descDuration = prometheus.NewDesc("paved_deploy_request_duration_seconds",
		"Latency of the requests the environment's proxy served, by track.",
		[]string{"environment", "track"}, nil)
	descReplicas = prometheus.NewDesc("paved_deploy_replica_restarts_total",
		"Restarts of an environment's replicas, by version.", []string{"environment", "version"}, nil)
)

// Collect exports every environment's proxy metrics (prometheus.Collector), so that a
// Prometheus scraping paved can serve the analysis (source: prometheus).
func (c *Controller) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	envs := make([]*environment, 0, len(c.envs))
	for _, e := range c.envs {
		envs = append(envs, e)
	}
	c.mu.Unlock()
	for _, env := range envs {
		for track, cs := range env.proxy.Metrics() {
			ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(cs.Errors), env.name, track, "5xx")
			ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(cs.Requests-cs.Errors), env.name, track, "ok")
			buckets := map[float64]uint64{}
			var cum uint64
			for i, ub := range local.BucketBounds() {
				cum += uint64(cs.Buckets[i])
				buckets[ub] = cum
			}
			ch <- prometheus.MustNewConstHistogram(descDuration, uint64(cs.Requests), cs.SumSec, buckets, env.name, track)
		}
		restarts := map[string]int{}
		for _, p := range env.proxy.Pools() {
			for _, r := range p.Replicas {
				restarts[r.Spec.Version] += r.Restarts()
			}
		}
		for v, n := range restarts {
			ch <- prometheus.MustNewConstMetric(descReplicas, prometheus.CounterValue, float64(n), env.name, v)
		}
	}
}

var _ prometheus.Collector = (*Controller)(nil)

// IsBadRequest reports whether err is the caller's mistake.
func IsBadRequest(err error) bool { return errors.Is(err, ErrBadRequest) }
