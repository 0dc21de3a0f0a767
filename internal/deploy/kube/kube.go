package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/client-go/util/retry"

	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/paved/paved/internal/deploy"
	"github.com/paved/paved/internal/run"
)

// Labels and annotations paved puts on what it manages.
const (
	LabelEnvironment = "paved.dev/environment"
	LabelTrack       = "paved.dev/track" // stable or canary
	LabelSlot        = "paved.dev/slot"  // blue or green
	LabelVersion     = "paved.dev/version"
	LabelManagedBy   = "app.kubernetes.io/managed-by"
	AnnotArtifact    = "paved.dev/artifact"
	annotRevision    = "deployment.kubernetes.io/revision"
)

// ErrProgressDeadline: the deployment controller gave up on a rollout.
var ErrProgressDeadline = errors.New("kube: progress deadline exceeded")

// Client builds a clientset for k's cluster: its kubeconfig context, or the in-cluster
// configuration when Context is "in-cluster".
func Client(k deploy.Kubernetes) (kubernetes.Interface, error) {
	cfg, err := restConfig(k)
	if err != nil {
		return nil, err
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kube: %w", err)
	}
	return c, nil
}

// GatewayClient builds a Gateway API clientset for k's cluster, as Client does.
func GatewayClient(k deploy.Kubernetes) (gatewayclient.Interface, error) {
	cfg, err := restConfig(k)
	if err != nil {
		return nil, err
	}
	c, err := gatewayclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kube: %w", err)
	}
	return c, nil
}

func restConfig(k deploy.Kubernetes) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if k.Context == "in-cluster" {
		cfg, err = rest.InClusterConfig()
	} else {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		if k.Kubeconfig != "" {
			rules.ExplicitPath = k.Kubeconfig
		}
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: k.Context}).ClientConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kube: cluster of context %q: %w (set kubernetes.context to a context of your kubeconfig, or in-cluster)", k.Context, err)
	}
	return cfg, nil
}

// Config wires a Target.
type Config struct {
	// Client picks the cluster of a deployment. Default: Client (the kubeconfig context of
	// the Spec's kubernetes: settings).
	Client func(k deploy.Kubernetes) (kubernetes.Interface, error)
	// Gateway picks the Gateway API client of a canary with an http_route. Default:
	// GatewayClient (the same kubeconfig context).
	Gateway func(k deploy.Kubernetes) (gatewayclient.Interface, error)
	Logger  *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Target runs deployments against Kubernetes. Deploy and Resume may be called from many
// goroutines; what they do to one environment is serialised. Blue-green's pending
// scale-downs are recorded on the Deployments (AnnotScaleDownAt), so that Stop, which
// drops their timers, loses none: Resume, or the environment's next deployment, finishes
// them.
type Target struct {
	cfg     Config
	mu      sync.Mutex
	env     map[string]*envState
	stopped bool
	fires   sync.WaitGroup // scale-down timers running
	done    chan struct{}  // closed by Stop
}

// envState is one environment (namespace/name) of one cluster.
type envState struct {
	sem chan struct{} // held by whoever acts on the environment
	// Under Target.mu: where the environment is, for its timer, and the timer of its
	// earliest pending scale-down.
	c        kubernetes.Interface
	ns, name string
	timer    *time.Timer
}

// New returns a Target.
func New(cfg Config) *Target {
	if cfg.Client == nil {
		cfg.Client = Client
	}
	if cfg.Gateway == nil {
		cfg.Gateway = GatewayClient
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Target{cfg: cfg, env: map[string]*envState{}, done: make(chan struct{})}
}

// Stop drops the timers of pending scale-downs (their due times stay on the Deployments)
// and waits for those running. Deploy and Resume must not be called after.
func (t *Target) Stop() {
	t.mu.Lock()
	if !t.stopped {
		t.stopped = true
		close(t.done)
	}
	for _, e := range t.env {
		if e.timer != nil {
			e.timer.Stop()
		}
	}
	t.mu.Unlock()
	t.fires.Wait()
}

// Request is one deployment.
type Request struct {
	// ID names the deployment in events; Spec is filled by Spec.Defaults here.
	ID       string
	Spec     deploy.Spec
	Artifact string // the artifact's digest, recorded on the pods
}

// Result is how a deployment ended: store.DeploymentSucceeded, DeploymentFailed (the
// environment was left as it was) or DeploymentRolledBack, and why.
type Result struct {
	Outcome string
	Reason  string
}

// Deploy runs one deployment to its end. An error means it could not be carried out (the
// cluster refused, ctx ended); what it started is then left for the next deployment.
func (t *Target) Deploy(ctx context.Context, req Request, rep deploy.Reporter) (Result, error) {
	spec, err := req.Spec.Defaults()
	if err != nil {
		return Result{}, err
	}
	if spec.Target != deploy.TargetKubernetes {
		return Result{}, fmt.Errorf("kube: environment %s has target %q, not kubernetes", spec.Environment, spec.Target)
	}
	client, err := t.cfg.Client(*spec.Kubernetes)
	if err != nil {
		return Result{}, err
	}
	es, err := t.acquire(ctx, client, spec)
	if err != nil {
		return Result{}, err
	}
	defer func() {
		// The due times on the Deployments are the truth: whatever this deployment left
		// pending (or cancelled), arm the environment's timer from them again.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if rerr := t.resume(rctx, es); rerr != nil {
			t.cfg.Logger.Warn("kube: pending scale-downs", "environment", spec.Environment, "err", rerr)
		}
		<-es.sem
	}()

	d := &deployment{t: t, es: es, c: client, ns: spec.Kubernetes.Namespace, name: dnsName(spec.Environment), spec: spec, rep: rep, artifact: req.Artifact}
	d.base = run.Deployment{ID: req.ID, Environment: spec.Environment, Strategy: spec.Strategy, Artifact: req.Artifact, Version: version(req.Artifact)}
	if err := d.event(run.DeploymentStarted, func(x *run.Deployment) { x.Phase = "progressing" }); err != nil {
		return Result{}, err
	}
	var res Result
	switch spec.Strategy {
	case deploy.BlueGreen:
		res, err = d.blueGreen(ctx)
	case deploy.Canary:
		res, err = d.canary(ctx)
	default:
		res, err = d.rolling(ctx)
	}
	if err != nil {
		return res, err
	}
	d.log("deployment %s %s: %s", req.ID, res.Outcome, reasonOr(res.Reason, "rolled out"))
	err = d.event(run.DeploymentFinished, func(x *run.Deployment) { x.Phase, x.Outcome, x.Reason = "done", res.Outcome, res.Reason })
	return res, err
}

// acquire takes the environment of spec for the caller, its timer stopped until the caller
// is done.
func (t *Target) acquire(ctx context.Context, c kubernetes.Interface, spec deploy.Spec) (*envState, error) {
	key := spec.Kubernetes.Kubeconfig + "|" + spec.Kubernetes.Context + "|" + spec.Kubernetes.Namespace + "/" + spec.Environment
	t.mu.Lock()
	e := t.env[key]
	if e == nil {
		e = &envState{sem: make(chan struct{}, 1)}
		t.env[key] = e
	}
	t.mu.Unlock()
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("kube: waiting for the deployment in progress to %s: %w", spec.Environment, ctx.Err())
	}
	t.mu.Lock()
	if e.timer != nil {
		e.timer.Stop()
	}
	e.c, e.ns, e.name = c, spec.Kubernetes.Namespace, dnsName(spec.Environment)
	t.mu.Unlock()
	return e, nil
}

// deployment is one Deploy in progress.
type deployment struct {
	t        *Target
	es       *envState
	c        kubernetes.Interface
	ns, name string
	spec     deploy.Spec
	rep      deploy.Reporter
	artifact string
	base     run.Deployment
	rt       *route // the canary's HTTPRoute, when one splits its traffic
}

func (d *deployment) log(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d.t.cfg.Logger.Info(msg, "environment", d.spec.Environment)
	if d.rep != nil {
		d.rep.Log(msg)
	}
}

func (d *deployment) event(ty run.Type, set func(*run.Deployment)) error {
	if d.rep == nil {
		return nil
	}
	x := d.base
	if set != nil {
		set(&x)
	}
	return d.rep.Event(run.Event{Type: ty, Deployment: &x})
}

// labels of every object of the environment.
func (d *deployment) labels(extra ...string) map[string]string {
	l := map[string]string{LabelEnvironment: d.name, LabelManagedBy: "paved"}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return l
}

// podTemplate runs the new version; selector are the labels its Deployment selects on.
func (d *deployment) podTemplate(selector map[string]string) corev1.PodTemplateSpec {
	k := d.spec.Kubernetes
	l := map[string]string{LabelVersion: version(d.artifact)}
	for key, v := range selector {
		l[key] = v
	}
	env := []corev1.EnvVar{{Name: "PORT", Value: fmt.Sprint(k.ContainerPort)}}
	for _, key := range sortedKeys(d.spec.Env) {
		env = append(env, corev1.EnvVar{Name: key, Value: d.spec.Env[key]})
	}
	ctr := corev1.Container{
		Name: "app", Image: k.Image, Args: d.spec.Args, Env: env,
		Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: int32(k.ContainerPort)}},
		ReadinessProbe: probe(d.spec.Readiness, k.ContainerPort),
	}
	if d.spec.Liveness != nil {
		ctr.LivenessProbe = probe(d.spec.Liveness, k.ContainerPort)
	}
	if d.spec.Startup != nil {
		ctr.StartupProbe = probe(d.spec.Startup, k.ContainerPort)
	}
	if d.spec.Analysis.MemoryLimit > 0 {
		ctr.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: *resourceQuantity(d.spec.Analysis.MemoryLimit)}
	}
	grace := int64(math.Ceil(d.spec.Drain.Seconds()))
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: l, Annotations: map[string]string{AnnotArtifact: d.artifact}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{ctr}, TerminationGracePeriodSeconds: &grace},
	}
}

// apply creates the Deployment or replaces its replicas and pod template, keeping what
// else is there (its status, its revision history).
func (d *deployment) apply(ctx context.Context, want *appsv1.Deployment) (out *appsv1.Deployment, err error) {
	// The controllers write the object too: a conflict means read it again and retry.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		out, err = d.applyOnce(ctx, want)
		return err
	})
	return out, err
}

func (d *deployment) applyOnce(ctx context.Context, want *appsv1.Deployment) (*appsv1.Deployment, error) {
	cur, err := d.c.AppsV1().Deployments(d.ns).Get(ctx, want.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		out, err := d.c.AppsV1().Deployments(d.ns).Create(ctx, want, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("kube: create deployment %s/%s: %w", d.ns, want.Name, err)
		}
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kube: get deployment %s/%s: %w", d.ns, want.Name, err)
	}
	cur.Labels = want.Labels
	// The Deployment serves again: a scale-down pending from an earlier deployment is off.
	delete(cur.Annotations, AnnotScaleDownAt)
	cur.Spec.Replicas = want.Spec.Replicas
	cur.Spec.Template = want.Spec.Template
	cur.Spec.Strategy = want.Spec.Strategy
	cur.Spec.ProgressDeadlineSeconds = want.Spec.ProgressDeadlineSeconds
	out, err := d.c.AppsV1().Deployments(d.ns).Update(ctx, cur, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("kube: update deployment %s/%s: %w", d.ns, want.Name, err)
	}
	return out, nil
}

// scale sets a Deployment's replicas.
func (d *deployment) scale(ctx context.Context, name string, n int32) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error { return d.scaleOnce(ctx, name, n) })
}

func (d *deployment) scaleOnce(ctx context.Context, name string, n int32) error {
	s, err := d.c.AppsV1().Deployments(d.ns).GetScale(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("kube: scale deployment %s/%s: %w", d.ns, name, err)
	}
	s.Spec.Replicas = n
	if _, err := d.c.AppsV1().Deployments(d.ns).UpdateScale(ctx, name, s, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("kube: scale deployment %s/%s to %d: %w", d.ns, name, n, err)
	}
	return nil
}

// deployment builds a Deployment named name selecting selector.
func (d *deployment) deployment(name string, replicas int32, selector map[string]string) *appsv1.Deployment {
	deadline := int32(math.Ceil(d.spec.ReadinessTimeout.Seconds()))
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: d.labels()},
		Spec: appsv1.DeploymentSpec{
			Replicas:                &replicas,
			Selector:                &metav1.LabelSelector{MatchLabels: selector},
			Template:                d.podTemplate(selector),
			ProgressDeadlineSeconds: &deadline,
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxSurge: ptr(intstr.Parse(d.spec.MaxSurge)), MaxUnavailable: ptr(intstr.Parse(d.spec.MaxUnavailable)),
			}},
		},
	}
}

// service creates or updates a Service named name selecting selector.
func (d *deployment) service(ctx context.Context, name string, selector map[string]string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error { return d.serviceOnce(ctx, name, selector) })
}

func (d *deployment) serviceOnce(ctx context.Context, name string, selector map[string]string) error {
	port := int32(d.spec.Kubernetes.ContainerPort)
	want := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: d.labels()},
		Spec:       corev1.ServiceSpec{Selector: selector, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(port)}}},
	}
	cur, err := d.c.CoreV1().Services(d.ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, err := d.c.CoreV1().Services(d.ns).Create(ctx, want, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("kube: create service %s/%s: %w", d.ns, name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("kube: get service %s/%s: %w", d.ns, name, err)
	}
	cur.Spec.Selector = selector
	cur.Spec.Ports = want.Spec.Ports
	if _, err := d.c.CoreV1().Services(d.ns).Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("kube: update service %s/%s: %w", d.ns, name, err)
	}
	return nil
}

// waitRollout watches the Deployment until its rollout is complete (kubectl rollout
// status' test), or the controller reports ProgressDeadlineExceeded after since (when
// deadline is set), or ctx ends.
func (d *deployment) waitRollout(ctx context.Context, name string, since time.Time, deadline bool) error {
	// A backstop: the controller's own deadline should fire first.
	ctx, cancel := context.WithTimeout(ctx, d.spec.ReadinessTimeout*3+30*time.Second)
	defer cancel()
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return d.c.AppsV1().Deployments(d.ns).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return d.c.AppsV1().Deployments(d.ns).Watch(ctx, o)
		},
	}
	// The watch's first list may come from the apiserver's cache, older than our last
	// write: a quorum read says which generation the rollout must have observed.
	cur, err := d.c.AppsV1().Deployments(d.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("kube: get deployment %s/%s: %w", d.ns, name, err)
	}
	minGen := cur.Generation
	cutoff := since.Truncate(time.Second)
	_, err = watchtools.UntilWithSync(ctx, lw, &appsv1.Deployment{}, nil, func(e watch.Event) (bool, error) {
		dep, ok := e.Object.(*appsv1.Deployment)
		if !ok {
			return false, nil
		}
		if e.Type == watch.Deleted {
			return false, fmt.Errorf("kube: deployment %s/%s deleted during its rollout", d.ns, name)
		}
		if dep.Generation < minGen {
			return false, nil
		}
		return rolloutDone(dep, cutoff, deadline)
	})
	if err != nil && !errors.Is(err, ErrProgressDeadline) {
		if ctx.Err() != nil {
			return fmt.Errorf("kube: rollout of %s/%s: %w", d.ns, name, ctx.Err())
		}
		return fmt.Errorf("kube: rollout of %s/%s: %w", d.ns, name, err)
	}
	return err
}

func rolloutDone(dep *appsv1.Deployment, cutoff time.Time, deadline bool) (bool, error) {
	if dep.Generation > dep.Status.ObservedGeneration {
		return false, nil
	}
	for _, c := range dep.Status.Conditions {
		if deadline && c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" && !c.LastUpdateTime.Time.Before(cutoff) {
			return false, fmt.Errorf("%w: %s", ErrProgressDeadline, c.Message)
		}
	}
	want := int32(1)
	if dep.Spec.Replicas != nil {
		want = *dep.Spec.Replicas
	}
	s := dep.Status
	return s.UpdatedReplicas >= want && s.Replicas <= s.UpdatedReplicas && s.AvailableReplicas >= s.UpdatedReplicas, nil
}

// previousTemplate is the pod template of the Deployment's ReplicaSet with the highest
// revision below its current one: what `kubectl rollout undo` restores.
func (d *deployment) previousTemplate(ctx context.Context, dep *appsv1.Deployment) (*corev1.PodTemplateSpec, error) {
	rss, err := d.c.AppsV1().ReplicaSets(d.ns).List(ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(dep.Spec.Selector)})
	if err != nil {
		return nil, fmt.Errorf("kube: list replica sets of %s/%s: %w", d.ns, dep.Name, err)
	}
	cur := revision(dep.Annotations)
	var best *appsv1.ReplicaSet
	for i := range rss.Items {
		rs := &rss.Items[i]
		if !metav1.IsControlledBy(rs, dep) {
			continue
		}
		r := revision(rs.Annotations)
		if r < cur && (best == nil || r > revision(best.Annotations)) {
			best = rs
		}
	}
	if best == nil {
		return nil, nil
	}
	t := best.Spec.Template.DeepCopy()
	delete(t.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	return t, nil
}

func revision(a map[string]string) int64 {
	var r int64
	_, _ = fmt.Sscan(a[annotRevision], &r)
	return r
}

func ptr[T any](v T) *T { return &v }

func reasonOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func version(digest string) string {
	v := strings.TrimPrefix(digest, "sha256:")
	if len(v) > 12 {
		v = v[:12]
	}
	return v
}

// dnsName turns an environment name into a DNS-1123 label (Kubernetes object names).
func dnsName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > 40 {
		out = strings.TrimRight(out[:40], "-")
	}
	if out == "" {
		out = "env"
	}
	return out
}

// DeployFunc is Deploy in the shape of deploy.Config.Kubernetes.
func (t *Target) DeployFunc(ctx context.Context, id string, spec deploy.Spec, artifact string, rep deploy.Reporter) (string, string, error) {
	res, err := t.Deploy(ctx, Request{ID: id, Spec: spec, Artifact: artifact}, rep)
	return res.Outcome, res.Reason, err
}
