package kubetest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// podWorkspace is where the Kubernetes executor's pods have their workspace.
const podWorkspace = "/workspace"

// PlayPod runs the pod's containers on this machine, as kwok cannot: the init container,
// then the stage and collect containers side by side, each with its command and its
// environment from the API server (secretKeyRefs read from the attempt's Secret), the
// pod's /workspace being a temporary directory. It returns the containers' exit codes.
func PlayPod(t testing.TB, client kubernetes.Interface, pod *corev1.Pod) map[string]int {
	t.Helper()
	for _, tool := range []string{"curl", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("playing a pod needs %s: %v", tool, err)
		}
	}
	ws := t.TempDir()
	// The pod's /workspace and /tmp are directories of the test's, replaced in one pass
	// (each holds the other's name) and as paths only, not in the URL /api/v1/pod/workspace.
	tmp := t.TempDir()
	inPod := regexp.MustCompile(`(^|[^a-z])(` + podWorkspace + `|/tmp)\b`)
	local := func(s string) string {
		return inPod.ReplaceAllStringFunc(s, func(m string) string {
			i := strings.IndexByte(m, '/')
			if m[i:] == "/tmp" {
				return m[:i] + tmp
			}
			return m[:i] + ws
		})
	}
	secret, err := client.CoreV1().Secrets(pod.Namespace).Get(context.Background(), pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	run := func(ctr corev1.Container) int {
		env := []string{"PATH=" + os.Getenv("PATH")}
		for _, e := range ctr.Env {
			v := e.Value
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				v = string(secret.Data[e.ValueFrom.SecretKeyRef.Key])
			}
			env = append(env, e.Name+"="+local(v))
		}
		args := make([]string, len(ctr.Command))
		for i, a := range ctr.Command {
			args[i] = local(a)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env, cmd.Dir = env, local(ctr.WorkingDir)
		out, err := cmd.CombinedOutput()
		t.Logf("container %s: %v\n%s", ctr.Name, err, out)
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil { // not started: Errorf, for this runs on goroutines of its own
			t.Errorf("container %s: %v", ctr.Name, err)
			return 127
		}
		return 0
	}
	codes := map[string]int{}
	for _, ctr := range pod.Spec.InitContainers {
		if codes[ctr.Name] = run(ctr); codes[ctr.Name] != 0 {
			return codes
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, ctr := range pod.Spec.Containers {
		wg.Go(func() {
			code := run(ctr)
			mu.Lock()
			codes[ctr.Name] = code
			mu.Unlock()
		})
	}
	wg.Wait()
	return codes
}

// EndPod sets the pod's phase and containers' exit codes as the kubelet would.
func EndPod(t testing.TB, client kubernetes.Interface, pod *corev1.Pod, codes map[string]int) {
	t.Helper()
	p, err := client.CoreV1().Pods(pod.Namespace).Get(context.Background(), pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status.Phase = corev1.PodSucceeded
	p.Status.InitContainerStatuses, p.Status.ContainerStatuses = nil, nil
	for _, ctr := range p.Spec.InitContainers {
		code, ran := codes[ctr.Name]
		if !ran {
			continue
		}
		if code != 0 {
			p.Status.Phase = corev1.PodFailed
		}
		p.Status.InitContainerStatuses = append(p.Status.InitContainerStatuses, corev1.ContainerStatus{Name: ctr.Name, Image: ctr.Image,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: int32(code), FinishedAt: metav1.Now()}}})
	}
	for _, ctr := range p.Spec.Containers {
		c, ran := codes[ctr.Name]
		if !ran { // an init container failed: this one never started
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: ctr.Name, Image: ctr.Image,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}})
			continue
		}
		code := int32(c)
		if code != 0 {
			p.Status.Phase = corev1.PodFailed
		}
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: ctr.Name, Image: ctr.Image,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, FinishedAt: metav1.Now()}}})
	}
	if _, err := client.CoreV1().Pods(pod.Namespace).UpdateStatus(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}
