package kube_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/paved/paved/internal/deploy"
	"github.com/paved/paved/internal/deploy/kube"
	"github.com/paved/paved/internal/deploy/promtest"
	"github.com/paved/paved/internal/kube/kubetest"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

const (
	v1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	v2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	v3 = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
	v4 = "sha256:4444444444444444444444444444444444444444444444444444444444444444"
)

type env struct {
	t      *testing.T
	c      *kubetest.Cluster
	ns     string
	target *kube.Target
}

func newEnv(t *testing.T) *env {
	c := kubetest.Get(t)
	e := &env{t: t, c: c, ns: c.Namespace(t), target: kube.New(kube.Config{})}
	t.Cleanup(e.target.Stop)
	return e
}

// spec is a deployment to the test's namespace through the cluster's kubeconfig context,
// as an environment's settings name it.
func (e *env) spec(name, strategy string, replicas int) deploy.Spec {
	return deploy.Spec{
		Environment: name, Strategy: strategy, Replicas: replicas, ReadinessTimeout: 30 * time.Second,
		MaxSurge: "1", MaxUnavailable: "0",
		Target:     deploy.TargetKubernetes,
		Kubernetes: &deploy.Kubernetes{Kubeconfig: e.c.Kubeconfig, Context: "kubetest", Namespace: e.ns, Image: "registry.example/web:1"},
	}
}

func (e *env) deploy(spec deploy.Spec, artifact string) (kube.Result, *recorder) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rec := &recorder{}
	res, err := e.target.Deploy(ctx, kube.Request{ID: "dep-" + artifact[7:12], Spec: spec, Artifact: artifact}, rec)
	if err != nil {
		e.t.Fatalf("deploy %s: %v\n%s", artifact[:12], err, rec.text())
	}
	return res, rec
}

func (e *env) client() kubernetes.Interface { return e.c.Client }

func (e *env) deployment(name string) *appsv1.Deployment {
	e.t.Helper()
	d, err := e.client().AppsV1().Deployments(e.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

func (e *env) selector(svc string) map[string]string {
	e.t.Helper()
	s, err := e.client().CoreV1().Services(e.ns).Get(context.Background(), svc, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return s.Spec.Selector
}

// replicaSets maps the artifact each ReplicaSet of deployment name runs to its ready replicas.
func (e *env) replicaSets(name string) map[string]int32 {
	e.t.Helper()
	dep := e.deployment(name)
	rss, err := e.client().AppsV1().ReplicaSets(e.ns).List(context.Background(), metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(dep.Spec.Selector)})
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]int32{}
	for _, rs := range rss.Items {
		if metav1.IsControlledBy(&rs, dep) {
			out[rs.Spec.Template.Annotations[kube.AnnotArtifact]] = *rs.Spec.Replicas
		}
	}
	return out
}

func artifactOf(d *appsv1.Deployment) string { return d.Spec.Template.Annotations[kube.AnnotArtifact] }

type recorder struct {
	mu     sync.Mutex
	lines  []string
	events []run.Event
}

func (r *recorder) Log(line string) {
	r.mu.Lock()
	r.lines = append(r.lines, line)
	r.mu.Unlock()
}

func (r *recorder) Event(e run.Event) error {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	return nil
}

func (r *recorder) find(t run.Type) []run.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []run.Event
	for _, e := range r.events {
		if e.Type == t {
			out = append(out, e)
		}
	}
	return out
}

func (r *recorder) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, l := range r.lines {
		b.WriteString(l + "\n")
	}
	for _, e := range r.events {
		fmt.Fprintf(&b, "%s %+v\n", e.Type, *e.Deployment)
		if a := e.Deployment.Analysis; a != nil {
			fmt.Fprintf(&b, "  analysis %+v\n", *a)
		}
	}
	return b.String()
}

// TestRolling: a rolling update replaces v1 by v2 with the Deployment's own surge settings;
// v3 cannot be scheduled (it asks for more memory than the node has), misses its progress
// deadline and the previous ReplicaSet's template (v2) is restored.
func TestRolling(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	spec := e.spec("web", deploy.Rolling, 3)
	if res, rec := e.deploy(spec, v1); res.Outcome != store.DeploymentSucceeded {
		t.Fatalf("v1: %+v\n%s", res, rec.text())
	}
	if res, rec := e.deploy(spec, v2); res.Outcome != store.DeploymentSucceeded {
		t.Fatalf("v2: %+v\n%s", res, rec.text())
	}
	d := e.deployment("web")
	ru := d.Spec.Strategy.RollingUpdate
	if ru == nil || ru.MaxSurge.String() != "1" || ru.MaxUnavailable.String() != "0" || *d.Spec.ProgressDeadlineSeconds != 30 {
		t.Errorf("strategy %+v, progress deadline %d", d.Spec.Strategy, *d.Spec.ProgressDeadlineSeconds)
	}
	if artifactOf(d) != v2 || d.Status.ReadyReplicas != 3 {
		t.Errorf("after v2: artifact %s, ready %d", artifactOf(d), d.Status.ReadyReplicas)
	}
	if sel := e.selector("web"); sel[kube.LabelEnvironment] != "web" || len(sel) != 2 {
		t.Errorf("service selector %v", sel)
	}

	bad := spec
	bad.ReadinessTimeout = 2 * time.Second
	bad.Analysis.MemoryLimit = 1 << 50 // no node has it: the new pods stay Pending
	res, rec := e.deploy(bad, v3)
	if res.Outcome != store.DeploymentRolledBack || !strings.Contains(res.Reason, "progress deadline") {
		t.Fatalf("v3: %+v\n%s", res, rec.text())
	}
	if len(rec.find(run.RollbackStarted)) != 1 {
		t.Errorf("no RollbackStarted event\n%s", rec.text())
	}
	d = e.deployment("web")
	if artifactOf(d) != v2 || d.Status.ReadyReplicas != 3 {
		t.Errorf("after the rollback: artifact %s, ready %d", artifactOf(d), d.Status.ReadyReplicas)
	}
	rs := e.replicaSets("web")
	if rs[v2] != 3 || rs[v3] != 0 || rs[v1] != 0 {
		t.Errorf("replica sets by artifact: %v", rs)
	}
}

// TestBlueGreen: v1 goes to blue, v2 to green and the Service's selector switches; blue
// is scaled down after keep_warm. v3 goes to blue, the analysis after the switch reads a
// failing error rate from Prometheus and the selector switches back to green.
func TestBlueGreen(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	feed := newFeeder(t)
	spec := e.spec("shop", deploy.BlueGreen, 2)
	spec.KeepWarm = time.Second
	if res, rec := e.deploy(spec, v1); res.Outcome != store.DeploymentSucceeded {
		t.Fatalf("v1: %+v\n%s", res, rec.text())
	}
	if s := e.selector("shop")[kube.LabelSlot]; s != "blue" {
		t.Fatalf("after v1 the service selects %q", s)
	}
	if res, rec := e.deploy(spec, v2); res.Outcome != store.DeploymentSucceeded {
		t.Fatalf("v2: %+v\n%s", res, rec.text())
	}
	if s := e.selector("shop")[kube.LabelSlot]; s != "green" {
		t.Fatalf("after v2 the service selects %q", s)
	}
	if a := artifactOf(e.deployment("shop-green")); a != v2 {
		t.Errorf("green runs %s", a)
	}
	waitFor(t, "blue scaled down after keep_warm", func() bool { return *e.deployment("shop-blue").Spec.Replicas == 0 })

	bad := spec
	bad.Analysis = deploy.Analysis{Source: "prometheus", Prometheus: &deploy.Prometheus{URL: feed.promURL}, Interval: time.Second, Count: 3}
	feed.set("shop", deploy.TrackStable, 0.3)
	res, rec := e.deploy(bad, v3)
	if res.Outcome != store.DeploymentRolledBack || !strings.Contains(res.Reason, "error_rate") {
		t.Fatalf("v3: %+v\n%s", res, rec.text())
	}
	if s := e.selector("shop")[kube.LabelSlot]; s != "green" {
		t.Errorf("after the failed v3 the service selects %q, want green back", s)
	}
	if d := e.deployment("shop-blue"); *d.Spec.Replicas != 0 || artifactOf(d) != v3 {
		t.Errorf("blue: %d replicas of %s", *d.Spec.Replicas, artifactOf(d))
	}
	if d := e.deployment("shop-green"); *d.Spec.Replicas != 2 || artifactOf(d) != v2 {
		t.Errorf("green: %d replicas of %s", *d.Spec.Replicas, artifactOf(d))
	}
}

// TestCanary: v2's canary passes its analysis and is promoted; v3's canary fails 40% of
// its requests (Prometheus says so), is deleted and stable is back at its replicas of v2.
func TestCanary(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	feed := newFeeder(t)
	spec := e.spec("api", deploy.Canary, 4)
	spec.Steps = []int{25, 100}
	spec.Analysis = deploy.Analysis{Source: "prometheus", Prometheus: &deploy.Prometheus{URL: feed.promURL}, Interval: time.Second, Count: 1, MinSamples: 5}
	if res, rec := e.deploy(spec, v1); res.Outcome != store.DeploymentSucceeded {
		t.Fatalf("v1: %+v\n%s", res, rec.text())
	}
	res, rec := e.deploy(spec, v2)
	if res.Outcome != store.DeploymentSucceeded {
		t.Fatalf("v2: %+v\n%s", res, rec.text())
	}
	steps := rec.find(run.DeploymentStepAdvanced)
	if len(steps) != 2 || steps[0].Deployment.Weights[deploy.TrackCanary] != 25 {
		t.Errorf("steps %s", rec.text())
	}
	if d := e.deployment("api"); artifactOf(d) != v2 || *d.Spec.Replicas != 4 {
		t.Errorf("after v2 stable runs %d of %s", *d.Spec.Replicas, artifactOf(d))
	}
	if _, err := e.client().AppsV1().Deployments(e.ns).Get(context.Background(), "api-canary", metav1.GetOptions{}); err == nil {
		t.Errorf("the canary deployment outlived its promotion")
	}

	feed.set("api", deploy.TrackCanary, 0.4)
	res, rec = e.deploy(spec, v3)
	if res.Outcome != store.DeploymentRolledBack || !strings.Contains(res.Reason, "error_rate") {
		t.Fatalf("v3: %+v\n%s", res, rec.text())
	}
	rb := rec.find(run.RollbackStarted)
	if len(rb) != 1 || rb[0].Deployment.Analysis == nil || rb[0].Deployment.Analysis.Outcome != run.AnalysisFail {
		t.Errorf("rollback events:\n%s", rec.text())
	}
	waitFor(t, "the canary deployment deleted", func() bool {
		_, err := e.client().AppsV1().Deployments(e.ns).Get(context.Background(), "api-canary", metav1.GetOptions{})
		return err != nil
	})
	if d := e.deployment("api"); artifactOf(d) != v2 || *d.Spec.Replicas != 4 || d.Status.ReadyReplicas != 4 {
		t.Errorf("after v3 stable runs %d (%d ready) of %s", *d.Spec.Replicas, d.Status.ReadyReplicas, artifactOf(d))
	}
}

// waitFor polls cond with a deadline: some of what is checked is the controllers' work,
// which ends after Deploy returned.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// feeder serves paved_deploy_* metrics for a real Prometheus to scrape, as a service's
// pods would export them: 200 requests a second per track and environment, a set share of
// them 5xx.
type feeder struct {
	promURL string
	mu      sync.Mutex
	rates   map[[2]string]*atomic.Uint64 // (environment, track) -> error share * 1e6
	reqs    *prometheus.CounterVec
	lat     *prometheus.HistogramVec
}

func newFeeder(t *testing.T) *feeder {
	f := &feeder{rates: map[[2]string]*atomic.Uint64{}}
	f.reqs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paved_deploy_requests_total"}, []string{"environment", "track", "class"})
	f.lat = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "paved_deploy_request_duration_seconds", Buckets: []float64{.005, .01, .05, .1}}, []string{"environment", "track"})
	reg := prometheus.NewRegistry()
	reg.MustRegister(f.reqs, f.lat)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	f.promURL = promtest.Start(t, srv.Listener.Addr().String())
	done := make(chan struct{})
	stopped := make(chan struct{})
	t.Cleanup(func() { close(done); <-stopped })
	go func() {
		defer close(stopped)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			f.mu.Lock()
			for k, r := range f.rates {
				bad := int(float64(r.Load()) / 1e6 * 10)
				f.reqs.WithLabelValues(k[0], k[1], "5xx").Add(float64(bad))
				f.reqs.WithLabelValues(k[0], k[1], "2xx").Add(float64(10 - bad))
				for range 10 {
					f.lat.WithLabelValues(k[0], k[1]).Observe(0.004)
				}
			}
			f.mu.Unlock()
		}
	}()
	for _, env := range []string{"shop", "api"} {
		for _, tr := range []string{deploy.TrackStable, deploy.TrackCanary} {
			f.set(env, tr, 0)
		}
	}
	// A new Prometheus scrapes a moment after it is ready: wait for the feed's first samples.
	waitFor(t, "prometheus has the feed's samples", func() bool {
		resp, err := http.Get(f.promURL + "/api/v1/query?query=count(paved_deploy_requests_total)")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), `"value"`)
	})
	return f
}

func (f *feeder) set(env, track string, errShare float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := [2]string{env, track}
	if f.rates[k] == nil {
		f.rates[k] = &atomic.Uint64{}
	}
	f.rates[k].Store(uint64(errShare * 1e6))
}
