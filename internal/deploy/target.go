package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// Targets. The local target is the Controller's own; the others (package deploy/kube)
// drive a cluster with the same Spec, analysis and metric sources.
const (
	TargetLocal      = "local"
	TargetKubernetes = "kubernetes"
)

// Kubernetes says where a deployment with Target kubernetes goes: a kubeconfig context (or
// the in-cluster configuration) and a namespace. Each environment names its own, so one
// paved deploys to many clusters.
type Kubernetes struct {
	// Kubeconfig is the kubeconfig file. Default: $KUBECONFIG, else ~/.kube/config.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// Context in the kubeconfig. Default: its current context. "in-cluster" uses the
	// service account of the pod paved runs in.
	Context string `json:"context,omitempty"`
	// Namespace of the environment's Deployments and Services. Default: the environment's name.
	Namespace string `json:"namespace,omitempty"`
	// Image is the container image the artifact runs in (the pipeline builds and pushes
	// it); required.
	Image string `json:"image,omitempty"`
	// ContainerPort the service listens on in its pod. Default 8080.
	ContainerPort int `json:"container_port,omitempty"`
	// HTTPRoute names a Gateway API HTTPRoute in Namespace whose backendRefs weights split
	// a canary's traffic (canary strategy only). Default: none, the split is by replicas.
	HTTPRoute string `json:"http_route,omitempty"`
}

// Tracks, as the metric sources label them.
const (
	TrackStable   = trackStable
	TrackCanary   = trackCanary
	TrackBaseline = trackBaseline
)

// NewPrometheusSource is the Prometheus metric source for targets outside this package.
func NewPrometheusSource(cfg Prometheus, environment string, now func() time.Time) Source {
	if now == nil {
		now = time.Now
	}
	return newPromSource(cfg, environment, now)
}

// AnalyzeStep judges one canary step, canary against baseline, with the analysis the local
// target uses: it returns when the step passed (a.Count passes) or failed, with the
// deciding measurement. restarts reads the canary's container restarts now; report gets
// every measurement that does not end the step.
func AnalyzeStep(ctx context.Context, a Analysis, src Source, step int, restarts func() int, now func() time.Time,
	report func(m run.Analysis, paused bool) error) (pass bool, deciding run.Analysis, err error) {
	if now == nil {
		now = time.Now
	}
	if restarts == nil {
		restarts = func() int { return 0 }
	}
	if report == nil {
		report = func(run.Analysis, bool) error { return nil }
	}
	an := &analyzer{cfg: a, src: src, restarts: restarts, now: now, report: report}
	return an.step(ctx, step)
}

// defaultsTarget checks and fills the target settings of s.
func (s *Spec) defaultsTarget() error {
	switch s.Target {
	case "", TargetLocal:
		s.Target = ""
		if s.Kubernetes != nil {
			return fmt.Errorf("deploy: kubernetes: settings need target: kubernetes")
		}
	case TargetKubernetes:
		// A copy: Defaults must not change the caller's Spec through the pointer.
		k := &Kubernetes{}
		if s.Kubernetes != nil {
			*k = *s.Kubernetes
		}
		s.Kubernetes = k
		if k.Namespace == "" {
			k.Namespace = s.Environment
		}
		if k.ContainerPort == 0 {
			k.ContainerPort = 8080
		}
		if k.ContainerPort < 1 || k.ContainerPort > 65535 {
			return fmt.Errorf("deploy: kubernetes.container_port %d: use 1 to 65535", k.ContainerPort)
		}
		if k.Image == "" {
			return fmt.Errorf("deploy: target kubernetes needs kubernetes.image (the image the pipeline pushed)")
		}
		if k.HTTPRoute != "" && s.Strategy != Canary {
			return fmt.Errorf("deploy: kubernetes.http_route %q: only the canary strategy splits traffic by route weights, not %s", k.HTTPRoute, s.Strategy)
		}
	default:
		return fmt.Errorf("deploy: target %q: use local or kubernetes", s.Target)
	}
	return nil
}

// deployKubernetes records a deployment to a kubernetes target and hands it to
// Config.Kubernetes: the cluster, not this controller, owns its replicas.
func (c *Controller) deployKubernetes(ctx context.Context, req Request, spec Spec, rep Reporter) (store.Deployment, error) {
	if c.cfg.Kubernetes == nil {
		return store.Deployment{}, fmt.Errorf("%w: environment %s has target kubernetes, which this server does not drive", ErrBadRequest, spec.Environment)
	}
	cfg, hash := spec.Hash()
	rec := store.Deployment{
		ID: "dep-" + uuid.NewString()[:13], Environment: spec.Environment, Strategy: spec.Strategy,
		Artifact: req.Artifact, Version: version(req.Artifact), Config: cfg, ConfigHash: hash,
		RunID: req.RunID, Stage: req.Stage, Repo: req.Repo, SHA: req.SHA, TriggeredBy: req.TriggeredBy, RollbackOf: req.RollbackOf,
		Outcome: store.DeploymentInProgress, StartedAt: c.cfg.Now(),
	}
	if err := c.cfg.History.DeploymentAppend(ctx, rec); err != nil {
		return rec, fmt.Errorf("deploy: record deployment: %w", err)
	}
	outcome, reason, err := c.cfg.Kubernetes(ctx, rec.ID, spec, req.Artifact, rep)
	if err != nil {
		outcome, reason = store.DeploymentFailed, err.Error()
	}
	rec.Outcome, rec.Reason, rec.FinishedAt = outcome, reason, c.cfg.Now()
	if ferr := c.cfg.History.DeploymentFinish(context.WithoutCancel(ctx), store.DeploymentFinishParams{ID: rec.ID, Outcome: outcome, Reason: reason, FinishedAt: rec.FinishedAt}); ferr != nil {
		return rec, errors.Join(err, fmt.Errorf("deploy: record outcome: %w", ferr))
	}
	return rec, err
}
