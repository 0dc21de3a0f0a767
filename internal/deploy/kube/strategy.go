package kube

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"

	"github.com/paved/paved/internal/deploy"
	"github.com/paved/paved/internal/deploy/local"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// rolling updates the environment's one Deployment in place; the deployment controller
// does the surge and drain, and a missed progress deadline restores the previous
// ReplicaSet's pod template.
func (d *deployment) rolling(ctx context.Context) (Result, error) {
	selector := d.labels(LabelTrack, deploy.TrackStable)
	if err := d.service(ctx, d.name, d.stableServiceSelector()); err != nil {
		return Result{}, err
	}
	start := d.t.cfg.Now()
	dep, err := d.apply(ctx, d.deployment(d.name, int32(d.spec.Replicas), selector))
	if err != nil {
		return Result{}, err
	}
	if err := d.event(run.DeploymentStepAdvanced, func(x *run.Deployment) { x.Step, x.Steps, x.Phase = 1, 1, "progressing" }); err != nil {
		return Result{}, err
	}
	err = d.waitRollout(ctx, d.name, start, true)
	if err == nil {
		return Result{Outcome: store.DeploymentSucceeded}, nil
	}
	if !errors.Is(err, ErrProgressDeadline) {
		return Result{}, err
	}
	reason := err.Error()
	// The controller annotated the Deployment with its new revision: read it again.
	if dep, err = d.c.AppsV1().Deployments(d.ns).Get(ctx, d.name, metav1.GetOptions{}); err != nil {
		return Result{}, fmt.Errorf("kube: get deployment %s/%s: %w", d.ns, d.name, err)
	}
	prev, err := d.previousTemplate(ctx, dep)
	if err != nil {
		return Result{}, err
	}
	if prev == nil {
		// Nothing to go back to: the first deployment of the environment stays as it is.
		return Result{Outcome: store.DeploymentFailed, Reason: reason}, nil
	}
	d.log("rolling back %s/%s to the previous ReplicaSet: %s", d.ns, d.name, reason)
	if err := d.event(run.RollbackStarted, func(x *run.Deployment) { x.Phase, x.Reason = "rolling_back", reason }); err != nil {
		return Result{}, err
	}
	start = d.t.cfg.Now()
	if err := d.restoreTemplate(ctx, prev); err != nil {
		return Result{}, err
	}
	if err := d.waitRollout(ctx, d.name, start, false); err != nil {
		return Result{}, fmt.Errorf("kube: the rollback itself did not complete: %w", err)
	}
	return Result{Outcome: store.DeploymentRolledBack, Reason: reason}, nil
}

// restoreTemplate puts tmpl back as the pod template of the Deployment NAME.
func (d *deployment) restoreTemplate(ctx context.Context, tmpl *corev1.PodTemplateSpec) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		dep, err := d.c.AppsV1().Deployments(d.ns).Get(ctx, d.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		dep.Spec.Template = *tmpl
		_, err = d.c.AppsV1().Deployments(d.ns).Update(ctx, dep, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("kube: roll back deployment %s/%s: %w", d.ns, d.name, err)
	}
	return nil
}

// restorePrevious puts the previous ReplicaSet's pod template back on the Deployment NAME,
// when it has one.
func (d *deployment) restorePrevious(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	dep, err := d.c.AppsV1().Deployments(d.ns).Get(ctx, d.name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("kube: get deployment %s/%s: %w", d.ns, d.name, err)
	}
	prev, err := d.previousTemplate(ctx, dep)
	if err != nil || prev == nil {
		return err
	}
	return d.restoreTemplate(ctx, prev)
}

// Blue-green slots.
const (
	slotBlue  = "blue"
	slotGreen = "green"
)

// blueGreen rolls the new version out in the idle slot, switches the Service's selector to
// it, verifies it there and switches back when that fails.
func (d *deployment) blueGreen(ctx context.Context) (Result, error) {
	svc, err := d.c.CoreV1().Services(d.ns).Get(ctx, d.name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return Result{}, fmt.Errorf("kube: get service %s/%s: %w", d.ns, d.name, err)
	}
	active := ""
	if err == nil {
		active = svc.Spec.Selector[LabelSlot]
	}
	idle := slotBlue
	if active == slotBlue {
		idle = slotGreen
	}
	name := d.name + "-" + idle
	selector := d.labels(LabelSlot, idle)
	start := d.t.cfg.Now()
	if _, err := d.apply(ctx, d.deployment(name, int32(d.spec.Replicas), selector)); err != nil {
		return Result{}, err
	}
	if err := d.service(ctx, d.name+"-preview", selector); err != nil {
		return Result{}, err
	}
	if err := d.event(run.DeploymentStepAdvanced, func(x *run.Deployment) {
		x.Step, x.Steps, x.Phase, x.Weights = 1, 2, "progressing", map[string]int{deploy.TrackStable: 100, deploy.TrackCanary: 0}
	}); err != nil {
		return Result{}, err
	}
	if err := d.waitRollout(ctx, name, start, true); err != nil {
		if !errors.Is(err, ErrProgressDeadline) {
			return Result{}, err
		}
		// Traffic never reached it: take it down, the active slot serves on.
		if serr := d.scale(context.WithoutCancel(ctx), name, 0); serr != nil {
			return Result{}, errors.Join(err, serr)
		}
		return Result{Outcome: store.DeploymentFailed, Reason: err.Error()}, nil
	}
	if err := d.service(ctx, d.name, selector); err != nil {
		return Result{}, err
	}
	d.log("switched service %s/%s from %s to %s", d.ns, d.name, orNone(active), idle)
	if err := d.event(run.DeploymentStepAdvanced, func(x *run.Deployment) {
		x.Step, x.Steps, x.Phase, x.Weights = 2, 2, "verifying", map[string]int{deploy.TrackStable: 0, deploy.TrackCanary: 100}
	}); err != nil {
		return Result{}, err
	}
	if active == "" {
		return Result{Outcome: store.DeploymentSucceeded}, nil
	}
	ok, deciding, err := d.verifyAfterSwitch(ctx)
	if err != nil {
		return Result{}, err
	}
	old := d.name + "-" + active
	if !ok {
		reason := deciding.Reason
		if err := d.event(run.RollbackStarted, func(x *run.Deployment) { x.Phase, x.Reason, x.Analysis = "rolling_back", reason, &deciding }); err != nil {
			return Result{}, err
		}
		// The old slot is still warm: one update of the selector puts it back.
		if err := d.service(context.WithoutCancel(ctx), d.name, d.labels(LabelSlot, active)); err != nil {
			return Result{}, err
		}
		d.log("switched service %s/%s back to %s: %s", d.ns, d.name, active, reason)
		if err := d.scale(context.WithoutCancel(ctx), name, 0); err != nil {
			return Result{}, err
		}
		return Result{Outcome: store.DeploymentRolledBack, Reason: reason}, nil
	}
	if err := d.scaleDownLater(ctx, old); err != nil {
		// The switch is done and stands; the old slot then waits for the next deployment.
		d.log("%v: %s stays up until the environment's next deployment", err, old)
	}
	return Result{Outcome: store.DeploymentSucceeded}, nil
}

// verifyAfterSwitch measures the new slot until the analysis' count of intervals (the SLO
// window when set) passed, with the Prometheus source: an error rate above max_error_rate
// fails it; an interval with fewer than min_samples requests does not count.
// Without a Prometheus source there is nothing to measure and it passes.
func (d *deployment) verifyAfterSwitch(ctx context.Context) (bool, run.Analysis, error) {
	a := d.spec.Analysis
	if a.Source != "prometheus" {
		d.log("no analysis after the switch: set analysis.source prometheus to judge the new slot")
		return true, run.Analysis{}, nil
	}
	src := d.source()
	if err := src.Mark(ctx, deploy.TrackStable); err != nil {
		return false, run.Analysis{}, err
	}
	n := a.Count
	if d.spec.SLOWindow > 0 {
		n = max(1, int(d.spec.SLOWindow/a.Interval))
	}
	t := time.NewTicker(a.Interval)
	defer t.Stop()
	errs, passes := 0, 0
	var pausedSince time.Time
	for i := 1; passes < n; i++ {
		select {
		case <-ctx.Done():
			return false, run.Analysis{}, ctx.Err()
		case <-t.C:
		}
		s, err := src.Measure(ctx, deploy.TrackStable)
		m := run.Analysis{Measurement: i}
		switch {
		case err != nil:
			errs++
			m.Outcome, m.Reason = run.AnalysisError, err.Error()
			if errs > a.ConsecutiveErrorLimit {
				m.Outcome, m.Reason = run.AnalysisFail, fmt.Sprintf("%d metric errors in a row: %v", errs, err)
				return false, m, nil
			}
		case s.Requests < int64(a.MinSamples):
			// Never judged good on no data: the window stays open, up to inconclusive_timeout.
			errs = 0
			m.Outcome = run.AnalysisInconclusive
			m.Reason = fmt.Sprintf("too little traffic: %d requests, %d needed", s.Requests, a.MinSamples)
			now := d.t.cfg.Now()
			if pausedSince.IsZero() {
				pausedSince = now
			} else if now.Sub(pausedSince) > a.InconclusiveTimeout {
				m.Outcome = run.AnalysisFail
				m.Reason = fmt.Sprintf("inconclusive for more than %s (%s); not keeping it on no data", a.InconclusiveTimeout, m.Reason)
				return false, m, nil
			}
		case s.ErrorRate > a.MaxErrorRate:
			m.Outcome = run.AnalysisFail
			m.Reason = fmt.Sprintf("error_rate %g > %g after the switch", round(s.ErrorRate), a.MaxErrorRate)
			m.Metrics = []run.MetricValue{{Name: "error_rate", Value: round(s.ErrorRate), Threshold: a.MaxErrorRate, Outcome: run.AnalysisFail}}
			return false, m, nil
		default:
			errs, passes, pausedSince = 0, passes+1, time.Time{}
			m.Outcome = run.AnalysisPass
			m.Metrics = []run.MetricValue{{Name: "error_rate", Value: round(s.ErrorRate), Threshold: a.MaxErrorRate, Outcome: run.AnalysisPass},
				{Name: "requests", Value: float64(s.Requests), Outcome: run.AnalysisPass}}
		}
		if err := d.event(run.AnalysisRun, func(x *run.Deployment) { x.Phase, x.Analysis = "verifying", &m }); err != nil {
			return false, m, err
		}
	}
	return true, run.Analysis{}, nil
}

// canary runs the new version in NAME-canary beside the stable NAME; each step is judged
// by the analysis. Without an HTTPRoute both run behind the one Service NAME and a step
// sets the replica ratio; with one (kubernetes.http_route), the canary has its own
// Service NAME-canary, stable keeps all its replicas and a step sets the route's weights.
func (d *deployment) canary(ctx context.Context) (Result, error) {
	var rt *route
	if d.spec.Kubernetes.HTTPRoute != "" {
		var err error
		if rt, err = d.httpRoute(ctx); err != nil {
			return Result{}, err
		}
	}
	d.rt = rt
	if err := d.service(ctx, d.name, d.stableServiceSelector()); err != nil {
		return Result{}, err
	}
	canarySel := d.labels(LabelTrack, deploy.TrackCanary)
	if rt != nil {
		if err := d.service(ctx, d.name+"-canary", canarySel); err != nil {
			return Result{}, err
		}
		// The canary's backendRef is on the route, at 0, before a canary pod exists; and
		// what an earlier deployment cut short may have left goes back to stable.
		if err := rt.set(ctx, 100, 0); err != nil {
			return Result{}, err
		}
	}
	_, err := d.c.AppsV1().Deployments(d.ns).Get(ctx, d.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// Nothing to compare with: the first version rolls out as a rolling update.
		d.log("first deployment of %s: no stable version to compare with, rolling it out", d.spec.Environment)
		return d.rolling(ctx)
	}
	if err != nil {
		return Result{}, fmt.Errorf("kube: get deployment %s/%s: %w", d.ns, d.name, err)
	}
	n := d.spec.Replicas
	canaryName := d.name + "-canary"
	var src deploy.Source
	if d.spec.Analysis.Source == "prometheus" {
		src = trackAlias{d.source()}
	} else {
		d.log("no analysis of the canary steps: set analysis.source prometheus to judge them")
	}
	for i, w := range d.spec.Steps {
		if w == 100 {
			break
		}
		// By replicas the canary's share is its share of the pods; by route it is the
		// step's weight exactly, and stable keeps every replica to carry the rest.
		c := max(1, int(math.Ceil(float64(n)*float64(w)/100)))
		s := max(1, n-c)
		if rt != nil {
			s = n
		}
		start := d.t.cfg.Now()
		if _, err := d.apply(ctx, d.deployment(canaryName, int32(c), canarySel)); err != nil {
			return Result{}, err
		}
		if err := d.scale(ctx, d.name, int32(s)); err != nil {
			return Result{}, err
		}
		if err := d.waitRollout(ctx, canaryName, start, true); err != nil {
			if !errors.Is(err, ErrProgressDeadline) {
				return Result{}, err
			}
			return d.canaryRollback(ctx, i+1, run.Analysis{Step: i + 1, Outcome: run.AnalysisFail, Reason: err.Error()})
		}
		if err := d.waitRollout(ctx, d.name, start, false); err != nil {
			return Result{}, err
		}
		weight := 100 * c / (c + s)
		if rt != nil {
			// Only once the canary's pods are ready does traffic move to them.
			weight = w
			if err := rt.set(ctx, int32(100-w), int32(w)); err != nil {
				return Result{}, err
			}
		}
		weights := map[string]int{deploy.TrackStable: 100 - weight, deploy.TrackCanary: weight}
		if err := d.event(run.DeploymentStepAdvanced, func(x *run.Deployment) {
			x.Step, x.Steps, x.Weights, x.Phase = i+1, len(d.spec.Steps), weights, "progressing"
		}); err != nil {
			return Result{}, err
		}
		if src == nil {
			continue
		}
		pass, deciding, err := deploy.AnalyzeStep(ctx, d.spec.Analysis, src, i+1, d.restarts(ctx, canarySel), d.t.cfg.Now,
			func(m run.Analysis, paused bool) error {
				phase := "progressing"
				if paused {
					phase = "paused"
				}
				return d.event(run.AnalysisRun, func(x *run.Deployment) {
					x.Step, x.Steps, x.Weights, x.Phase, x.Analysis = i+1, len(d.spec.Steps), weights, phase, &m
				})
			})
		if err != nil {
			return Result{}, err
		}
		if !pass {
			return d.canaryRollback(ctx, i+1, deciding)
		}
		if d.spec.Pause > 0 {
			if err := sleepCtx(ctx, d.spec.Pause); err != nil {
				return Result{}, err
			}
		}
	}
	if rt != nil {
		return d.promoteByRoute(ctx)
	}
	// Promote: stable takes the new template at full size, then the canary goes.
	start := d.t.cfg.Now()
	if _, err := d.apply(ctx, d.deployment(d.name, int32(n), d.labels(LabelTrack, deploy.TrackStable))); err != nil {
		return Result{}, err
	}
	if err := d.waitRollout(ctx, d.name, start, true); err != nil {
		if errors.Is(err, ErrProgressDeadline) {
			return d.canaryRollback(ctx, len(d.spec.Steps), run.Analysis{Outcome: run.AnalysisFail, Reason: err.Error()})
		}
		return Result{}, err
	}
	if err := d.deleteDeployment(ctx, canaryName); err != nil {
		return Result{}, err
	}
	if err := d.event(run.DeploymentStepAdvanced, func(x *run.Deployment) {
		x.Step, x.Steps, x.Phase, x.Weights = len(d.spec.Steps), len(d.spec.Steps), "progressing", map[string]int{deploy.TrackStable: 100}
	}); err != nil {
		return Result{}, err
	}
	return Result{Outcome: store.DeploymentSucceeded}, nil
}

// promoteByRoute is the last step (100) of a canary behind an HTTPRoute: the canary, at
// full size, takes all the traffic while stable rolls out the new version, which then
// takes it back; no request reaches the old version after the canary took it all.
func (d *deployment) promoteByRoute(ctx context.Context) (Result, error) {
	n, steps := int32(d.spec.Replicas), len(d.spec.Steps)
	canaryName := d.name + "-canary"
	start := d.t.cfg.Now()
	if err := d.scale(ctx, canaryName, n); err != nil {
		return Result{}, err
	}
	if err := d.waitRollout(ctx, canaryName, start, true); err != nil {
		if errors.Is(err, ErrProgressDeadline) {
			return d.canaryRollback(ctx, steps, run.Analysis{Step: steps, Outcome: run.AnalysisFail, Reason: err.Error()})
		}
		return Result{}, err
	}
	if err := d.rt.set(ctx, 0, 100); err != nil {
		return Result{}, err
	}
	if err := d.event(run.DeploymentStepAdvanced, func(x *run.Deployment) {
		x.Step, x.Steps, x.Phase, x.Weights = steps, steps, "progressing", map[string]int{deploy.TrackStable: 0, deploy.TrackCanary: 100}
	}); err != nil {
		return Result{}, err
	}
	start = d.t.cfg.Now()
	if _, err := d.apply(ctx, d.deployment(d.name, n, d.labels(LabelTrack, deploy.TrackStable))); err != nil {
		return Result{}, err
	}
	if err := d.waitRollout(ctx, d.name, start, true); err != nil {
		if !errors.Is(err, ErrProgressDeadline) {
			return Result{}, err
		}
		// The canary carries the traffic still: put stable's previous template back
		// before the rollback gives the traffic to it.
		if rerr := d.restorePrevious(ctx); rerr != nil {
			return Result{}, errors.Join(err, rerr)
		}
		return d.canaryRollback(ctx, steps, run.Analysis{Step: steps, Outcome: run.AnalysisFail, Reason: err.Error()})
	}
	if err := d.rt.set(ctx, 100, 0); err != nil {
		return Result{}, err
	}
	if err := d.deleteDeployment(ctx, canaryName); err != nil {
		return Result{}, err
	}
	if err := d.event(run.DeploymentStepAdvanced, func(x *run.Deployment) {
		x.Step, x.Steps, x.Phase, x.Weights = steps, steps, "progressing", map[string]int{deploy.TrackStable: 100, deploy.TrackCanary: 0}
	}); err != nil {
		return Result{}, err
	}
	return Result{Outcome: store.DeploymentSucceeded}, nil
}

// stableServiceSelector is what the Service NAME selects: the stable pods alone when an
// HTTPRoute splits the traffic (the canary has its own Service), else every pod of the
// environment.
func (d *deployment) stableServiceSelector() map[string]string {
	if d.spec.Kubernetes.HTTPRoute != "" {
		return d.labels(LabelTrack, deploy.TrackStable)
	}
	return d.labels()
}

// canaryRollback deletes the canary and brings stable back to its replicas; behind an
// HTTPRoute, all the traffic goes back to stable before the canary goes.
func (d *deployment) canaryRollback(ctx context.Context, step int, deciding run.Analysis) (Result, error) {
	ctx = context.WithoutCancel(ctx)
	reason := deciding.Reason
	if err := d.event(run.RollbackStarted, func(x *run.Deployment) {
		x.Step, x.Steps, x.Phase, x.Analysis, x.Reason = step, len(d.spec.Steps), "rolling_back", &deciding, reason
	}); err != nil {
		return Result{}, err
	}
	// Stable first, so that the Service never runs short of endpoints.
	start := d.t.cfg.Now()
	if err := d.scale(ctx, d.name, int32(d.spec.Replicas)); err != nil {
		return Result{}, err
	}
	if d.rt != nil {
		if err := d.waitRollout(ctx, d.name, start, false); err != nil {
			return Result{}, fmt.Errorf("kube: stable did not come back to %d replicas: %w", d.spec.Replicas, err)
		}
		if err := d.rt.set(ctx, 100, 0); err != nil {
			return Result{}, err
		}
	}
	if err := d.deleteDeployment(ctx, d.name+"-canary"); err != nil {
		return Result{}, err
	}
	if err := d.waitRollout(ctx, d.name, start, false); err != nil {
		return Result{}, fmt.Errorf("kube: stable did not come back to %d replicas: %w", d.spec.Replicas, err)
	}
	d.log("canary of %s rolled back at step %d: %s", d.spec.Environment, step, reason)
	return Result{Outcome: store.DeploymentRolledBack, Reason: reason}, nil
}

func (d *deployment) deleteDeployment(ctx context.Context, name string) error {
	// In the background: the garbage collector removes its ReplicaSets and pods.
	bg := metav1.DeletePropagationBackground
	err := d.c.AppsV1().Deployments(d.ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &bg})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("kube: delete deployment %s/%s: %w", d.ns, name, err)
	}
	return nil
}

// restarts reads the container restarts of the pods selector matches, for the analysis.
func (d *deployment) restarts(ctx context.Context, selector map[string]string) func() int {
	return func() int {
		pods, err := d.c.CoreV1().Pods(d.ns).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(selector).String()})
		if err != nil {
			return 0
		}
		n := 0
		for _, p := range pods.Items {
			for _, s := range p.Status.ContainerStatuses {
				n += int(s.RestartCount)
			}
		}
		return n
	}
}

func (d *deployment) source() deploy.Source {
	return deploy.NewPrometheusSource(*d.spec.Analysis.Prometheus, d.spec.Environment, d.t.cfg.Now)
}

// trackAlias reads the baseline from the stable track: on Kubernetes the stable pods,
// serving beside the canary, are the baseline.
type trackAlias struct{ deploy.Source }

func (t trackAlias) Mark(ctx context.Context, track string) error {
	return t.Source.Mark(ctx, alias(track))
}

func (t trackAlias) Measure(ctx context.Context, track string) (deploy.Sample, error) {
	return t.Source.Measure(ctx, alias(track))
}

func alias(track string) string {
	if track == deploy.TrackBaseline {
		return deploy.TrackStable
	}
	return track
}

func probe(p *local.Probe, port int) *corev1.Probe {
	if p == nil {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(port)}}, PeriodSeconds: 2}
	}
	path := p.Path
	if path == "" {
		path = "/"
	}
	return &corev1.Probe{
		ProbeHandler:        corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt(port)}},
		InitialDelaySeconds: secs(p.InitialDelay), PeriodSeconds: secs(p.Period), TimeoutSeconds: secs(p.Timeout),
		SuccessThreshold: int32(p.SuccessThreshold), FailureThreshold: int32(p.FailureThreshold),
	}
}

func secs(d time.Duration) int32 { return int32(math.Ceil(d.Seconds())) }

func resourceQuantity(bytes int64) *resource.Quantity {
	return resource.NewQuantity(bytes, resource.BinarySI)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func round(f float64) float64 { return math.Round(f*1e5) / 1e5 }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
