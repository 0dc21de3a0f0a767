package kube

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	blobs "github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/execute/workspace"
)

// Labels on every pod the executor makes.
const (
	LabelRun       = "paved.dev/run"
	LabelStage     = "paved.dev/stage"
	LabelAttempt   = "paved.dev/attempt"
	LabelTeam      = "paved.dev/team"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// AnnotStage keeps the stage's name as written (a label value cannot hold "test[1.22]").
	AnnotStage = "paved.dev/stage-name"
)

// Paths in the pod.
const (
	Workspace = "/workspace"
	CacheDir  = "/paved/cache"
)

var (
	// ErrDetached: Close was called while Run followed its pod; the pod keeps running and
	// the next executor re-attaches to it.
	ErrDetached = errors.New("kube: executor closed; the pod keeps running")
)

// Config wires an Executor.
type Config struct {
	Client kubernetes.Interface // required
	// NamespacePrefix: a team's stages run in NamespacePrefix+team. Default "paved-".
	NamespacePrefix string
	// Quota is the ResourceQuota's hard limits in each team namespace (created once, kept
	// as an administrator changes it). Default: pods 20, requests.cpu 8, requests.memory 16Gi.
	Quota corev1.ResourceList
	// DefaultImage runs a stage without image:. Default "debian:stable-slim".
	DefaultImage string
	// FetchImage runs the init container that fetches the workspace and the container
	// that sends the stage's artifacts and reports back; it needs sh, curl and tar.
	// Default "curlimages/curl:8.11.1".
	FetchImage string
	// ServerURL is where pods reach the paved server (its Handler, at /api/v1/pod).
	// Required; a func because the server knows its address only once it listens.
	ServerURL func() string
	// Dir keeps what pods send until their stage ends, and the workspaces being sent;
	// it should outlive a restart of paved (the data directory). Required.
	Dir string
	// Blobs stores artifacts by digest: upstream artifacts are read from it, a stage's
	// are stored in it. Required for stages with artifacts.
	Blobs *blobs.Blobs
	// CacheClaim is a PersistentVolumeClaim in each team namespace mounted at /paved/cache
	// for the stage's caches. Default: an emptyDir (no cache between stages).
	CacheClaim string
	Logger     *slog.Logger
}

// Executor runs stages as pods. Run may be called concurrently; Close detaches every Run
// in flight from its pod without deleting it.
type Executor struct {
	cfg    Config
	closed chan struct{}
	once   sync.Once
	nsMu   sync.Mutex
	nsDone map[string]bool

	attMu    sync.Mutex
	attempts map[string]*attempt // by tokenKey of their pod's token
}

var _ execute.Executor = (*Executor)(nil)

// New returns an Executor.
func New(cfg Config) (*Executor, error) {
	if cfg.Client == nil || cfg.ServerURL == nil || cfg.Dir == "" {
		return nil, errors.New("kube: Config.Client, ServerURL and Dir are required")
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("kube: %w", err)
	}
	if cfg.NamespacePrefix == "" {
		cfg.NamespacePrefix = "paved-"
	}
	if cfg.Quota == nil {
		cfg.Quota = corev1.ResourceList{
			corev1.ResourcePods:           resource.MustParse("20"),
			corev1.ResourceRequestsCPU:    resource.MustParse("8"),
			corev1.ResourceRequestsMemory: resource.MustParse("16Gi"),
		}
	}
	if cfg.DefaultImage == "" {
		cfg.DefaultImage = "debian:stable-slim"
	}
	if cfg.FetchImage == "" {
		cfg.FetchImage = "curlimages/curl:8.11.1"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Executor{cfg: cfg, closed: make(chan struct{}), nsDone: map[string]bool{}, attempts: map[string]*attempt{}}, nil
}

// Close detaches from every pod being followed: Run returns ErrDetached and the pods keep
// running for the next executor (after a restart of paved) to re-attach to.
func (e *Executor) Close() { e.once.Do(func() { close(e.closed) }) }

// Namespace is the namespace of a team's stages.
func (e *Executor) Namespace(team string) string {
	if team == "" {
		team = "default"
	}
	return e.cfg.NamespacePrefix + dnsLabel(team, 63-len(e.cfg.NamespacePrefix))
}

// Run runs the job's stage as a pod, or follows the pod of that attempt already there.
func (e *Executor) Run(ctx context.Context, job execute.Job, obs execute.Observer) (execute.Result, error) {
	res := execute.Result{Sandbox: "kubernetes"}
	if (len(job.Artifacts) > 0 || len(job.ArtifactsIn) > 0) && e.cfg.Blobs == nil {
		return res, errNoBlobs
	}
	ns := e.Namespace(job.Team)
	if err := e.ensureNamespace(ctx, ns, job.Team); err != nil {
		return res, err
	}
	pods := e.cfg.Client.CoreV1().Pods(ns)
	sel := labels.SelectorFromSet(jobLabels(job)).String()
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return res, fmt.Errorf("kube: find the pod of %s/%s: %w", job.RunID, job.Stage, err)
	}
	var pod *corev1.Pod
	for i := range list.Items {
		if list.Items[i].DeletionTimestamp == nil {
			pod = &list.Items[i]
			e.cfg.Logger.Info("kube: re-attaching to the stage's pod", "pod", ns+"/"+pod.Name, "run", job.RunID, "stage", job.Stage)
			break
		}
	}
	// The token is valid before the pod exists: its fetch may come at once.
	var token string
	if pod == nil {
		token = newPodToken()
	} else if token, err = e.podToken(ctx, ns, pod.Name); err != nil {
		// Without its token the pod can neither fetch nor send: it will fail, and say so.
		e.cfg.Logger.Warn("kube: the re-attached pod's token is lost", "pod", ns+"/"+pod.Name, "err", err)
	}
	att, unfollow := e.follow(token, job)
	if pod == nil {
		if pod, err = e.create(ctx, ns, job, token); err != nil {
			unfollow()
			return res, err
		}
	}
	detached := false
	defer func() {
		unfollow()
		if !detached {
			e.cleanup(ns, pod.Name)
			_ = os.RemoveAll(att.dir)
		}
	}()

	// Logs: one goroutine reads the pod's log and makes every Observer call, in order.
	lctx, stopLogs := context.WithCancel(ctx)
	defer stopLogs()
	steps := &stepTracker{obs: obs, n: len(job.Steps)}
	logsDone, podDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(logsDone)
		e.followLogs(lctx, ns, pod.Name, steps, podDone)
	}()

	final, err := e.waitEnd(ctx, ns, pod.Name)
	close(podDone)
	if err != nil {
		stopLogs()
		<-logsDone
		if errors.Is(err, ErrDetached) {
			detached = true
		}
		return res, err
	}
	// The log may still be draining: give it a moment, then stop following.
	select {
	case <-logsDone:
	case <-time.After(3 * time.Second):
		stopLogs()
		<-logsDone
	}
	if failed := e.containerFailure(ctx, final, final.Status.InitContainerStatuses, "fetch"); failed != "" {
		return res, fmt.Errorf("kube: stage %s: the pod could not fetch its workspace: %s", job.Stage, failed)
	}
	code, failedStep := exitOf(final, len(job.Steps))
	steps.finish(code, failedStep)
	collectFailed := e.containerFailure(ctx, final, final.Status.ContainerStatuses, "collect")
	if final.Status.Phase == corev1.PodFailed && (code != 0 || collectFailed == "") {
		res.Failed, res.ExitCode, res.FailedStep = true, code, failedStep
		if res.ExitCode == 0 {
			res.ExitCode = 1 // failed without a container exit code (evicted, deadline)
		}
	}
	return e.takeOutputs(att, res, collectFailed)
}

// takeOutputs reads what the pod sent: the reports (also of a failed stage) and, when the
// steps succeeded, the artifacts, matched against the stage's globs as the local executor
// does. collectFailed is how the pod's collect container failed, if it did.
func (e *Executor) takeOutputs(att *attempt, res execute.Result, collectFailed string) (execute.Result, error) {
	job := att.job
	if len(job.Reports) > 0 {
		dir, sent, err := att.outputs("reports", 4*execute.MaxReportBytes)
		switch {
		case err != nil:
			res.ReportsNote = err.Error()
		case !sent && collectFailed != "":
			res.ReportsNote = "the pod sent no reports: " + collectFailed
		case !sent:
			res.ReportsNote = "the pod sent no reports"
		default:
			res.Reports, res.ReportsNote = workspace.Reports(dir, job.Reports, execute.MaxReportBytes)
		}
		if dir != "" {
			_ = workspace.RemoveAll(dir)
		}
	}
	if res.Failed || len(job.Artifacts) == 0 {
		return res, nil
	}
	dir, sent, err := att.outputs("artifacts", MaxArtifactUpload)
	if dir != "" {
		defer func() { _ = workspace.RemoveAll(dir) }()
	}
	switch {
	case err != nil:
		return res, fmt.Errorf("kube: stage %s: %w", job.Stage, err)
	case !sent && collectFailed != "":
		return res, fmt.Errorf("kube: stage %s: its artifacts did not reach the server: %s", job.Stage, collectFailed)
	case !sent:
		return res, fmt.Errorf("kube: stage %s: its pod ended without sending its artifacts", job.Stage)
	}
	arts, err := workspace.StoreArtifacts(dir, job.Artifacts, e.cfg.Blobs)
	if err != nil {
		return res, fmt.Errorf("kube: stage %s: %w", job.Stage, err)
	}
	res.Artifacts = arts
	return res, nil
}

// containerFailure says how one of the pod's helper containers (fetch, collect) failed,
// with the end of its log; "" when it did not (or the pod has none).
func (e *Executor) containerFailure(ctx context.Context, p *corev1.Pod, statuses []corev1.ContainerStatus, name string) string {
	for _, s := range statuses {
		if s.Name != name || s.State.Terminated == nil || s.State.Terminated.ExitCode == 0 {
			continue
		}
		msg := fmt.Sprintf("its %s container ended with %d", name, s.State.Terminated.ExitCode)
		tail := int64(10)
		raw, err := e.cfg.Client.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: name, TailLines: &tail}).DoRaw(ctx)
		if err == nil && len(strings.TrimSpace(string(raw))) > 0 {
			msg += ": " + strings.Join(strings.Fields(string(raw)), " ")
		}
		return msg
	}
	return ""
}

// podToken reads a pod's token back from its attempt's Secret (re-attaching after a
// restart).
func (e *Executor) podToken(ctx context.Context, ns, name string) (string, error) {
	s, err := e.cfg.Client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	t := string(s.Data[podTokenKey])
	if t == "" {
		return "", fmt.Errorf("secret %s/%s has no %s", ns, name, podTokenKey)
	}
	return t, nil
}

// create makes the attempt's Secret and pod; the Secret is then owned by the pod.
func (e *Executor) create(ctx context.Context, ns string, job execute.Job, token string) (*corev1.Pod, error) {
	name := PodName(job)
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: jobLabels(job)},
		StringData: map[string]string{podTokenKey: token},
	}
	for _, k := range job.SecretEnv {
		if v, ok := job.Env[k]; ok {
			secret.StringData[k] = v
		}
	}
	secrets := e.cfg.Client.CoreV1().Secrets(ns)
	if _, err := secrets.Create(ctx, secret, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("kube: create the stage's secret %s/%s: %w", ns, name, err)
	}
	spec, err := e.PodSpec(job, name)
	if err != nil {
		return nil, err
	}
	pod, err := e.createPod(ctx, ns, spec)
	if err != nil {
		_ = secrets.Delete(context.WithoutCancel(ctx), name, metav1.DeleteOptions{})
		return nil, fmt.Errorf("kube: create pod %s/%s: %w", ns, name, err)
	}
	// The garbage collector deletes the Secret with the pod, also when paved is gone.
	s, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		s.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID}}
		_, err = secrets.Update(ctx, s, metav1.UpdateOptions{})
	}
	if err != nil {
		e.cfg.Logger.Warn("kube: own the stage's secret by its pod", "secret", ns+"/"+name, "err", err)
	}
	return pod, nil
}

// createPod creates the pod, retrying for a while what a namespace just made refuses: its
// default service account and its quota's status come from controllers, a moment later.
func (e *Executor) createPod(ctx context.Context, ns string, spec *corev1.Pod) (*corev1.Pod, error) {
	ctx2, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		pod, err := e.cfg.Client.CoreV1().Pods(ns).Create(ctx2, spec, metav1.CreateOptions{})
		if err == nil || !apierrors.IsForbidden(err) ||
			!(strings.Contains(err.Error(), "serviceaccount") || strings.Contains(err.Error(), "status unknown for quota")) {
			return pod, err
		}
		select {
		case <-ctx2.Done():
			return nil, err
		case <-t.C:
		}
	}
}

// PodName is the attempt's pod name: readable, unique per run, stage and attempt.
func PodName(job execute.Job) string {
	h := sha256.Sum256([]byte(job.RunID + "\x00" + job.Stage))
	return fmt.Sprintf("paved-%s-%s-%d", dnsLabel(job.Stage, 30), hex.EncodeToString(h[:])[:10], job.Attempt)
}

func jobLabels(job execute.Job) map[string]string {
	return map[string]string{
		LabelRun:       dnsLabel(job.RunID, 63),
		LabelStage:     dnsLabel(job.Stage, 63),
		LabelAttempt:   strconv.Itoa(job.Attempt),
		LabelManagedBy: "paved",
	}
}

// PodSpec is the pod of a job (exported for the documentation's sake and the tests).
func (e *Executor) PodSpec(job execute.Job, name string) (*corev1.Pod, error) {
	image := job.Image
	if image == "" {
		image = e.cfg.DefaultImage
	}
	res, err := resources(job.Resources)
	if err != nil {
		return nil, fmt.Errorf("kube: stage %s: %w", job.Stage, err)
	}
	secret := func(key string) corev1.EnvVar {
		return corev1.EnvVar{Name: key, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key}}}
	}
	isSecret := map[string]bool{}
	for _, k := range job.SecretEnv {
		isSecret[k] = true
	}
	var env []corev1.EnvVar
	for _, k := range slices.Sorted(maps.Keys(job.Env)) {
		if isSecret[k] {
			env = append(env, secret(k))
		} else {
			env = append(env, corev1.EnvVar{Name: k, Value: job.Env[k]})
		}
	}
	env = append(env,
		corev1.EnvVar{Name: "HOME", Value: Workspace + "/.paved/home"},
		corev1.EnvVar{Name: "TMPDIR", Value: "/tmp"},
		corev1.EnvVar{Name: "PAVED_WORKSPACE", Value: Workspace})
	for i, s := range job.Steps {
		env = append(env, corev1.EnvVar{Name: fmt.Sprintf("PAVED_STEP_%d", i), Value: s.Run})
	}
	fetchEnv := []corev1.EnvVar{
		{Name: "PAVED_SERVER", Value: strings.TrimSuffix(e.cfg.ServerURL(), "/")},
		secret(podTokenKey),
		{Name: "PAVED_RUN", Value: job.RunID},
		{Name: "PAVED_STAGE", Value: job.Stage},
	}
	mounts := []corev1.VolumeMount{{Name: "workspace", MountPath: Workspace}}
	volumes := []corev1.Volume{{Name: "workspace", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	if len(job.Caches) > 0 {
		vs := corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
		if e.cfg.CacheClaim != "" {
			vs = corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: e.cfg.CacheClaim}}
		}
		volumes = append(volumes, corev1.Volume{Name: "cache", VolumeSource: vs})
		mounts = append(mounts, corev1.VolumeMount{Name: "cache", MountPath: CacheDir})
		env = append(env, corev1.EnvVar{Name: "PAVED_CACHE_DIR", Value: CacheDir})
	}
	never := false
	l := jobLabels(job)
	l[LabelTeam] = dnsLabel(orDefault(job.Team, "default"), 63)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l, Annotations: map[string]string{AnnotStage: job.Stage, "paved.dev/run-id": job.RunID}},
		Spec: corev1.PodSpec{
			RestartPolicy:                corev1.RestartPolicyNever,
			AutomountServiceAccountToken: &never,
			Volumes:                      volumes,
			InitContainers: []corev1.Container{{
				Name: "fetch", Image: e.cfg.FetchImage, Command: []string{"sh", "-ec", fetchScript},
				Env: fetchEnv, WorkingDir: Workspace, VolumeMounts: mounts[:1],
			}},
			Containers: []corev1.Container{{
				Name: "stage", Image: image, Command: []string{"sh", "-c", stageScript(job)},
				Env: env, WorkingDir: Workspace, VolumeMounts: mounts, Resources: res,
				TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			}},
		},
	}
	if collects(job) {
		// Beside the steps, waiting for them to end: a regular container, not a native
		// sidecar, so that the pod ends only once what it sends has arrived.
		cenv := append(slices.Clone(fetchEnv),
			corev1.EnvVar{Name: "PAVED_COLLECT_REPORTS", Value: strings.Join(collectPaths(job.Reports), "\n")},
			corev1.EnvVar{Name: "PAVED_COLLECT_ARTIFACTS", Value: strings.Join(collectPaths(job.Artifacts), "\n")})
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{
			Name: "collect", Image: e.cfg.FetchImage, Command: []string{"sh", "-ec", collectScript},
			Env: cenv, WorkingDir: Workspace, VolumeMounts: mounts[:1],
		})
	}
	return pod, nil
}

// collects: the pod has a collect container, for the stage's reports or artifacts.
func collects(job execute.Job) bool { return len(job.Reports) > 0 || len(job.Artifacts) > 0 }

// fetchScript fills the workspace with what the server made of it (pods.go): the source
// checkout and the upstream artifacts, as one tar.gz. curl retries while paved restarts.
const fetchScript = `curl -fsS --retry 30 --retry-delay 2 --retry-connrefused -H "Authorization: Bearer $PAVED_POD_TOKEN" -o /tmp/workspace.tar.gz "$PAVED_SERVER/api/v1/pod/workspace"
tar -xzf /tmp/workspace.tar.gz -C /workspace
rm -f /tmp/workspace.tar.gz`

// collectScript waits for the steps to end (the stage script writes its exit code to
// doneFile), then sends the paths the report globs may match, and when the steps
// succeeded those the artifact globs may match; the server matches the globs. Paths are
// one per line; those that are not there are left out.
const collectScript = `set -f
IFS='
'
while [ ! -f ` + doneFile + ` ]; do sleep 1; done
rc=$(cat ` + doneFile + `)
send() {
  there=
  for p in $2; do if [ -e "$p" ] || [ -L "$p" ]; then there="$there$p
"; fi; done
  if [ -n "$there" ]; then tar -czf "/tmp/$1.tar.gz" -- $there; else : > "/tmp/$1.tar.gz"; fi
  curl -fsS --retry 30 --retry-delay 2 --retry-connrefused -H "Authorization: Bearer $PAVED_POD_TOKEN" -H 'Content-Type: application/gzip' -T "/tmp/$1.tar.gz" "$PAVED_SERVER/api/v1/pod/outputs/$1"
  rm -f "/tmp/$1.tar.gz"
}
if [ -n "$PAVED_COLLECT_REPORTS" ]; then send reports "$PAVED_COLLECT_REPORTS"; fi
if [ "$rc" = 0 ] && [ -n "$PAVED_COLLECT_ARTIFACTS" ]; then send artifacts "$PAVED_COLLECT_ARTIFACTS"; fi`

// Step markers in the stage container's output.
const (
	markStart = "::paved-step-start "
	markEnd   = "::paved-step-end "
)

// stageScript runs the steps in order with the stage's shell, each from its PAVED_STEP_i
// variable (no quoting of user commands into the script), marking where each starts and
// ends; the first failing step ends the container with its code and writes which step it
// was to the termination message.
func stageScript(job execute.Job) string {
	shell := `sh -e -c "$PAVED_STEP_%d"`
	if job.Shell == "bash" {
		shell = `bash --noprofile --norc -eo pipefail -c "$PAVED_STEP_%d"`
	}
	var b strings.Builder
	b.WriteString("mkdir -p \"$HOME\"\n")
	if collects(job) {
		// The collect container waits for this file; a trap writes it however the steps end
		// (but a SIGKILL: waitEnd sees to that).
		fmt.Fprintf(&b, "mkdir -p %s\ntrap 'echo $? > %s' EXIT\n", path.Dir(doneFile), doneFile)
	}
	for i := range job.Steps {
		fmt.Fprintf(&b, "echo '%s%d'\n", markStart, i)
		fmt.Fprintf(&b, shell+"\n", i)
		fmt.Fprintf(&b, "rc=$?; echo \"%s%d $rc\"\n", markEnd, i)
		fmt.Fprintf(&b, "if [ $rc -ne 0 ]; then echo \"step=%d\" > /dev/termination-log; exit $rc; fi\n", i)
	}
	return b.String()
}

func resources(r execute.Resources) (corev1.ResourceRequirements, error) {
	var out corev1.ResourceRequirements
	set := func(list *corev1.ResourceList, name corev1.ResourceName, v, key string) error {
		if v == "" {
			return nil
		}
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return fmt.Errorf("resources.%s %q is not a quantity (write 500m, 2 or 1Gi)", key, v)
		}
		if *list == nil {
			*list = corev1.ResourceList{}
		}
		(*list)[name] = q
		return nil
	}
	for _, f := range []error{
		set(&out.Requests, corev1.ResourceCPU, r.CPURequest, "cpu"),
		set(&out.Limits, corev1.ResourceCPU, r.CPULimit, "cpu_limit"),
		set(&out.Requests, corev1.ResourceMemory, r.MemoryRequest, "memory"),
		set(&out.Limits, corev1.ResourceMemory, r.MemoryLimit, "memory_limit"),
	} {
		if f != nil {
			return out, f
		}
	}
	return out, nil
}

// ensureNamespace creates the team's namespace and its ResourceQuota once.
func (e *Executor) ensureNamespace(ctx context.Context, ns, team string) error {
	e.nsMu.Lock()
	defer e.nsMu.Unlock()
	if e.nsDone[ns] {
		return nil
	}
	c := e.cfg.Client.CoreV1()
	_, err := c.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
		Labels: map[string]string{LabelManagedBy: "paved", LabelTeam: dnsLabel(orDefault(team, "default"), 63)}}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("kube: create namespace %s: %w", ns, err)
	}
	q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "paved"}, Spec: corev1.ResourceQuotaSpec{Hard: e.cfg.Quota}}
	if _, err := c.ResourceQuotas(ns).Create(ctx, q, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("kube: create resource quota in %s: %w", ns, err)
	}
	// A quota on requests refuses containers without them: the LimitRange gives the
	// containers of stages without resources: (and the init container) a default.
	lr := &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "paved"}, Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
		Type: corev1.LimitTypeContainer,
		DefaultRequest: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("100m"),
			corev1.ResourceMemory: resource.MustParse("256Mi"),
		},
	}}}}
	if _, err := c.LimitRanges(ns).Create(ctx, lr, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("kube: create limit range in %s: %w", ns, err)
	}
	e.nsDone[ns] = true
	return nil
}

// waitEnd watches the pod until it Succeeded or Failed.
func (e *Executor) waitEnd(ctx context.Context, ns, name string) (*corev1.Pod, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-e.closed:
			cancel()
		case <-wctx.Done():
		}
	}()
	pods := e.cfg.Client.CoreV1().Pods(ns)
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return pods.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return pods.Watch(ctx, o)
		},
	}
	ev, err := watchtools.UntilWithSync(wctx, lw, &corev1.Pod{}, nil, func(ev watch.Event) (bool, error) {
		p, ok := ev.Object.(*corev1.Pod)
		if !ok {
			return false, nil
		}
		if ev.Type == watch.Deleted {
			return false, fmt.Errorf("kube: pod %s/%s was deleted while the stage ran", ns, name)
		}
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || killedBeforeCollect(p), nil
	})
	if err != nil {
		select {
		case <-e.closed:
			return nil, ErrDetached
		default:
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("kube: stage pod %s/%s: %w", ns, name, ctx.Err())
		}
		return nil, fmt.Errorf("kube: watch pod %s/%s: %w", ns, name, err)
	}
	return ev.Object.(*corev1.Pod), nil
}

// killedBeforeCollect: the stage container was killed (OOM, a signal) and could not tell
// the collect container, which would wait for ever: the stage has ended.
func killedBeforeCollect(p *corev1.Pod) bool {
	stage, collect := false, false
	for _, s := range p.Status.ContainerStatuses {
		switch {
		case s.Name == "stage" && s.State.Terminated != nil && (s.State.Terminated.ExitCode >= 128 || s.State.Terminated.Reason == "OOMKilled"):
			stage = true
		case s.Name == "collect" && s.State.Terminated == nil:
			collect = true
		}
	}
	return stage && collect
}

// followLogs streams the stage container's log into steps until it ends or ctx is done.
// A pod with no log (not started yet) is retried every second; where there is none at all
// (kwok's fake nodes) the steps are reported from the exit status alone.
func (e *Executor) followLogs(ctx context.Context, ns, name string, steps *stepTracker, podDone <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var since *metav1.Time
	for {
		ended := false
		select {
		case <-podDone:
			ended = true // this is the last try: the container's log is complete
		default:
		}
		rc, err := e.cfg.Client.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{Container: "stage", Follow: true, SinceTime: since}).Stream(ctx)
		if err == nil {
			steps.read(rc)
			rc.Close()
			now := metav1.Now()
			since = &now
		}
		if ended {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-podDone:
		case <-t.C:
		}
	}
}

// exitOf reads the stage container's exit code and the failing step from its termination
// message ("step=N"); without one the last step is taken to have failed.
func exitOf(p *corev1.Pod, steps int) (code, failedStep int) {
	failedStep = max(steps-1, 0)
	for _, s := range p.Status.ContainerStatuses {
		if s.Name != "stage" || s.State.Terminated == nil {
			continue
		}
		code = int(s.State.Terminated.ExitCode)
		if n, ok := strings.CutPrefix(strings.TrimSpace(s.State.Terminated.Message), "step="); ok {
			if i, err := strconv.Atoi(n); err == nil && i >= 0 && i < steps {
				failedStep = i
			}
		}
	}
	return code, failedStep
}

// cleanup deletes the pod (and with it its Secret) and the Secret itself.
func (e *Executor) cleanup(ns, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	zero := int64(0)
	if err := e.cfg.Client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil && !apierrors.IsNotFound(err) {
		e.cfg.Logger.Warn("kube: delete the stage's pod", "pod", ns+"/"+name, "err", err)
	}
	if err := e.cfg.Client.CoreV1().Secrets(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		e.cfg.Logger.Warn("kube: delete the stage's secret", "secret", ns+"/"+name, "err", err)
	}
}

// stepTracker turns the marked log into Observer calls and completes them from the exit
// status when the log said less (or nothing).
type stepTracker struct {
	obs      execute.Observer
	n        int
	mu       sync.Mutex
	started  int // steps whose StepStarted was reported
	finished int // steps whose StepFinished was reported
	t0       time.Time
}

func (s *stepTracker) read(r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			s.line(line)
		}
		if err != nil {
			return
		}
	}
}

func (s *stepTracker) line(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A step whose output does not end in a newline has the end marker glued to its last
	// line: split them, or the step would never end.
	if i := strings.Index(line, markEnd); i > 0 {
		if s.started > s.finished {
			s.obs.Output(s.started-1, []byte(line[:i]))
		}
		line = line[i:]
	}
	trimmed := strings.TrimRight(line, "\n")
	if rest, ok := strings.CutPrefix(trimmed, markStart); ok {
		if i, err := strconv.Atoi(rest); err == nil && i == s.started && i < s.n {
			// The script starts a step only after the one before succeeded: one whose end
			// marker was lost ended with 0.
			for s.finished < s.started {
				s.obs.StepFinished(s.finished, 0, time.Since(s.t0))
				s.finished++
			}
			s.obs.StepStarted(i)
			s.started++
			s.t0 = time.Now()
			return
		}
	}
	if rest, ok := strings.CutPrefix(trimmed, markEnd); ok {
		f := strings.Fields(rest)
		if len(f) == 2 {
			i, err1 := strconv.Atoi(f[0])
			code, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && i == s.finished && i < s.started {
				s.obs.StepFinished(i, code, time.Since(s.t0))
				s.finished++
				return
			}
		}
	}
	if s.started > s.finished {
		s.obs.Output(s.started-1, []byte(line))
	}
}

// finish reports the steps the log did not: those before failedStep succeeded, failedStep
// ended with code; after a success all did.
func (s *stepTracker) finish(code, failedStep int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := s.n - 1
	if code != 0 {
		last = failedStep
	}
	for i := s.finished; i <= last; i++ {
		if i >= s.started {
			s.obs.StepStarted(i)
			s.started++
		}
		c := 0
		if i == failedStep && code != 0 {
			c = code
		}
		s.obs.StepFinished(i, c, 0)
		s.finished++
	}
}

// dnsLabel makes s a valid label value / DNS label of at most n characters.
func dnsLabel(s string, n int) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > n {
		out = strings.Trim(out[:n], "-")
	}
	if out == "" {
		out = "x"
	}
	return out
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
