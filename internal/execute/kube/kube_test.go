package kube_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/execute/kube"
	"github.com/paved/paved/internal/kube/kubetest"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// newExecutor returns an executor whose team namespaces are private to the test.
func newExecutor(t *testing.T, c *kubetest.Cluster) *kube.Executor {
	return newExecutorWith(t, c, kube.Config{})
}

// newExecutorWith fills in what cfg leaves out: the client, a private prefix, a directory.
func newExecutorWith(t *testing.T, c *kubetest.Cluster, cfg kube.Config) *kube.Executor {
	cfg.Client = c.Client
	if cfg.NamespacePrefix == "" {
		cfg.NamespacePrefix = fmt.Sprintf("p%d-", time.Now().UnixNano()%1e9)
	}
	if cfg.ServerURL == nil {
		cfg.ServerURL = func() string { return "http://paved.example:8080/" }
	}
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.Blobs == nil {
		b, err := cache.NewBlobs(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		cfg.Blobs = b
	}
	ex, err := kube.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, team := range []string{"payments", "default"} {
			_ = c.Client.CoreV1().Namespaces().Delete(context.Background(), ex.Namespace(team), metav1.DeleteOptions{})
		}
	})
	return ex
}

type running struct {
	res  execute.Result
	err  error
	done chan struct{}
	obs  *observer
}

func start(ex *kube.Executor, job execute.Job) *running {
	r := &running{done: make(chan struct{}), obs: &observer{}}
	go func() {
		defer close(r.done)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		r.res, r.err = ex.Run(ctx, job, r.obs)
	}()
	return r
}

func (r *running) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(time.Minute):
		t.Fatal("Run did not return")
	}
}

// podOf waits (polling with a deadline) until the job's pod exists and is
// Running (kwok runs it on the fake node).
func podOf(t *testing.T, c *kubetest.Cluster, ns string, job execute.Job) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		p, err := c.Client.CoreV1().Pods(ns).Get(context.Background(), kube.PodName(job), metav1.GetOptions{})
		if err == nil && p.Status.Phase == corev1.PodRunning {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod of %s not running: %v %+v", job.Stage, err, p)
		}
		<-tick.C
	}
}

func gone(t *testing.T, c *kubetest.Cluster, ns, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		_, perr := c.Client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		_, serr := c.Client.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
		if apierrors.IsNotFound(perr) && apierrors.IsNotFound(serr) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod or secret %s/%s outlived the stage: %v, %v", ns, name, perr, serr)
		}
		<-tick.C
	}
}

func job(stage string, attempt int) execute.Job {
	return execute.Job{
		RunID: "run-0001", Stage: stage, Attempt: attempt, Team: "payments",
		Source: execute.Source{Repo: "https://git.example/shop.git", SHA: "0123abcd"},
		Steps:  []execute.Step{{Name: "one", Run: "make deps"}, {Name: "two", Run: `go test "./..."`}},
		Shell:  "bash",
		Env:    map[string]string{"CGO_ENABLED": "0", "API_KEY": "s3cret"}, SecretEnv: []string{"API_KEY"},
		Image:     "golang:1.26",
		Resources: execute.Resources{CPURequest: "500m", CPULimit: "2", MemoryRequest: "256Mi", MemoryLimit: "1Gi"},
		Caches:    []execute.Cache{{Key: "go", Paths: []string{".gocache"}}},
	}
}

// TestDAG: build, then test and lint in parallel, as the scheduler runs a 3-stage DAG: one
// pod each with the stage's image, resources, steps, secrets and workspace init container,
// in the team's namespace under its ResourceQuota; pods and secrets are gone after.
func TestDAG(t *testing.T) {
	t.Parallel()
	c := kubetest.Get(t)
	ex := newExecutor(t, c)
	ns := ex.Namespace("payments")

	build := job("build", 1)
	build.ArtifactsIn = nil
	r := start(ex, build)
	p := podOf(t, c, ns, build)
	checkPod(t, c, p, build)
	if err := kubetest.SetPodPhase(context.Background(), c.Client, ns, p.Name, corev1.PodSucceeded, 0); err != nil {
		t.Fatal(err)
	}
	r.wait(t)
	if r.err != nil || r.res.Failed {
		t.Fatalf("build: %+v %v", r.res, r.err)
	}
	if got := r.obs.calls(); got != "start 0,end 0 0,start 1,end 1 0" {
		t.Errorf("observer calls %q", got)
	}
	gone(t, c, ns, p.Name)

	q, err := c.Client.CoreV1().ResourceQuotas(ns).Get(context.Background(), "paved", metav1.GetOptions{})
	if err != nil || q.Spec.Hard.Pods().String() != "20" {
		t.Errorf("quota %+v %v", q, err)
	}

	var wg sync.WaitGroup
	for _, stage := range []string{"test", "lint"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j := job(stage, 1)
			j.ArtifactsIn = []execute.Artifact{{Path: "out/app", Digest: "sha256:" + strings.Repeat("ab", 32), Size: 10, Mode: 0o755}}
			r := start(ex, j)
			p := podOf(t, c, ns, j)
			checkPod(t, c, p, j)
			if err := kubetest.SetPodPhase(context.Background(), c.Client, ns, p.Name, corev1.PodSucceeded, 0); err != nil {
				t.Error(err)
				return
			}
			r.wait(t)
			if r.err != nil || r.res.Failed {
				t.Errorf("%s: %+v %v", stage, r.res, r.err)
			}
			gone(t, c, ns, p.Name)
		}()
	}
	wg.Wait()
}

func checkPod(t *testing.T, c *kubetest.Cluster, p *corev1.Pod, j execute.Job) {
	t.Helper()
	want := map[string]string{kube.LabelRun: "run-0001", kube.LabelStage: j.Stage, kube.LabelAttempt: "1", kube.LabelTeam: "payments"}
	for k, v := range want {
		if p.Labels[k] != v {
			t.Errorf("%s: label %s=%q, want %q", j.Stage, k, p.Labels[k], v)
		}
	}
	if len(p.Spec.Containers) != 1 || len(p.Spec.InitContainers) != 1 {
		t.Fatalf("%s: containers %d, init %d: want one of each", j.Stage, len(p.Spec.Containers), len(p.Spec.InitContainers))
	}
	ctr := p.Spec.Containers[0]
	if ctr.Image != "golang:1.26" || ctr.WorkingDir != kube.Workspace || p.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("%s: image %s, workdir %s, restart %s", j.Stage, ctr.Image, ctr.WorkingDir, p.Spec.RestartPolicy)
	}
	if ctr.Resources.Requests.Cpu().String() != "500m" || ctr.Resources.Limits.Memory().String() != "1Gi" {
		t.Errorf("%s: resources %+v", j.Stage, ctr.Resources)
	}
	script := strings.Join(ctr.Command, " ")
	if !strings.Contains(script, `bash --noprofile --norc -eo pipefail -c "$PAVED_STEP_1"`) {
		t.Errorf("%s: the steps do not run with bash: %s", j.Stage, script)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range ctr.Env {
		env[e.Name] = e
	}
	if env["CGO_ENABLED"].Value != "0" || env["PAVED_STEP_1"].Value != `go test "./..."` || env["PAVED_WORKSPACE"].Value != kube.Workspace {
		t.Errorf("%s: env %+v", j.Stage, ctr.Env)
	}
	if s := env["API_KEY"]; s.Value != "" || s.ValueFrom == nil || s.ValueFrom.SecretKeyRef.Name != p.Name {
		t.Errorf("%s: the secret is not a secretKeyRef: %+v", j.Stage, s)
	}
	sec, err := c.Client.CoreV1().Secrets(p.Namespace).Get(context.Background(), p.Name, metav1.GetOptions{})
	if err != nil || string(sec.Data["API_KEY"]) != "s3cret" || len(sec.Data["PAVED_POD_TOKEN"]) < 40 {
		t.Errorf("%s: secret %v %v", j.Stage, sec, err)
	} else if len(sec.OwnerReferences) != 1 || sec.OwnerReferences[0].UID != p.UID {
		t.Errorf("%s: secret not owned by its pod: %+v", j.Stage, sec.OwnerReferences)
	}
	init := p.Spec.InitContainers[0]
	ienv := map[string]string{}
	for _, e := range init.Env {
		ienv[e.Name] = e.Value
	}
	if ienv["PAVED_SERVER"] != "http://paved.example:8080" || ienv["PAVED_RUN"] != "run-0001" || !strings.Contains(strings.Join(init.Command, " "), "/api/v1/pod/workspace") {
		t.Errorf("%s: init container %+v", j.Stage, init)
	}
	vols := map[string]bool{}
	for _, v := range p.Spec.Volumes {
		vols[v.Name] = true
	}
	if !vols["workspace"] || !vols["cache"] {
		t.Errorf("%s: volumes %+v", j.Stage, p.Spec.Volumes)
	}
	if p.Spec.NodeName != kubetest.NodeName {
		t.Errorf("%s: scheduled on %q", j.Stage, p.Spec.NodeName)
	}
}

// TestFailedPod: a pod that ends Failed fails the stage with the container's exit code and
// the step its termination message names.
func TestFailedPod(t *testing.T) {
	t.Parallel()
	c := kubetest.Get(t)
	ex := newExecutor(t, c)
	ns := ex.Namespace("payments")
	j := job("test", 2)
	r := start(ex, j)
	p := podOf(t, c, ns, j)
	pod, err := c.Client.CoreV1().Pods(ns).Get(context.Background(), p.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = corev1.PodFailed
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "stage", State: corev1.ContainerState{
		Terminated: &corev1.ContainerStateTerminated{ExitCode: 3, Message: "step=0\n"}}}}
	if _, err := c.Client.CoreV1().Pods(ns).UpdateStatus(context.Background(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	r.wait(t)
	if r.err != nil || !r.res.Failed || r.res.ExitCode != 3 || r.res.FailedStep != 0 {
		t.Fatalf("result %+v, err %v", r.res, r.err)
	}
	if got := r.obs.calls(); got != "start 0,end 0 3" {
		t.Errorf("observer calls %q", got)
	}
	gone(t, c, ns, p.Name)
}

// TestReattach: paved stops while a stage's pod runs (Close: the pod stays); a new
// executor running the same attempt follows that pod instead of creating another.
func TestReattach(t *testing.T) {
	t.Parallel()
	c := kubetest.Get(t)
	ex := newExecutor(t, c)
	ns := ex.Namespace("payments")
	j := job("build", 1)
	r := start(ex, j)
	p := podOf(t, c, ns, j)
	ex.Close()
	r.wait(t)
	if !errors.Is(r.err, kube.ErrDetached) {
		t.Fatalf("Run after Close: %v", r.err)
	}

	ex2 := newExecutorWith(t, c, kube.Config{NamespacePrefix: strings.TrimSuffix(ns, "payments")})
	r2 := start(ex2, j)
	// The executor lists before it creates: once it watches, the pod is still the first one.
	still := podOf(t, c, ns, j)
	if still.UID != p.UID {
		t.Fatalf("a new pod was created (%s, was %s)", still.UID, p.UID)
	}
	// The new executor knows the pod's token again: its fetch and collect go on.
	sec, err := c.Client.CoreV1().Secrets(ns).Get(context.Background(), p.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPut, "/outputs/reports", strings.NewReader(""))
	req.Header.Set("Authorization", "Bearer "+string(sec.Data["PAVED_POD_TOKEN"]))
	deadline := time.Now().Add(30 * time.Second)
	for {
		rec := httptest.NewRecorder()
		ex2.Handler().ServeHTTP(rec, req)
		if rec.Code == http.StatusNoContent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the re-attached executor refuses the pod's token: %d %s", rec.Code, rec.Body)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline: Run registers the token after its List
		req.Body = io.NopCloser(strings.NewReader(""))
	}
	if err := kubetest.SetPodPhase(context.Background(), c.Client, ns, p.Name, corev1.PodSucceeded, 0); err != nil {
		t.Fatal(err)
	}
	r2.wait(t)
	if r2.err != nil || r2.res.Failed {
		t.Fatalf("re-attached run: %+v %v", r2.res, r2.err)
	}
	pods, err := c.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: labels.SelectorFromSet(map[string]string{kube.LabelStage: "build"}).String()})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range pods.Items {
		if q.UID != p.UID && q.DeletionTimestamp == nil {
			t.Errorf("another pod %s for the attempt", q.Name)
		}
	}
	gone(t, c, ns, p.Name)
}

// observer records the Observer calls in order.
type observer struct {
	mu sync.Mutex
	c  []string
}

func (o *observer) StepStarted(i int)  { o.add(fmt.Sprintf("start %d", i)) }
func (o *observer) Output(int, []byte) {}
func (o *observer) StepFinished(i, code int, _ time.Duration) {
	o.add(fmt.Sprintf("end %d %d", i, code))
}
func (o *observer) Cache(execute.CacheReport) {}
func (o *observer) add(s string) {
	o.mu.Lock()
	o.c = append(o.c, s)
	o.mu.Unlock()
}
func (o *observer) calls() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.c, ",")
}
