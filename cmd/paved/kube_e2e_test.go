package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/paved/paved/internal/kube/kubetest"
	"github.com/paved/paved/internal/run"
)

// TestKubeExecutorRunsAPipeline: `paved server --executor kubernetes` against a real API
// server runs a two-stage pipeline as pods: build's pod fetches its workspace from the
// server and sends its artifact back, test's pod gets that artifact in its workspace and
// sends its JUnit report; the run succeeds with the artifact stored and the tests counted.
// kwok does not run containers, so the test plays each pod's containers on this machine
// with their commands and environment as the API server has them (kubetest.PlayPod).
// Run by `make test-kube`, which builds the control plane.
func TestKubeExecutorRunsAPipeline(t *testing.T) {
	if os.Getenv(kubetest.EnvBin) == "" {
		t.Skip("needs the test control plane: make test-kube")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, err := kubetest.Start(ctx, kubetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()

	dir := gitRepo(t, map[string]string{"main.go": "package main\n", ".paved.yml": `
name: kube
stages:
  build:
    image: golang:1.26
    steps: ["mkdir -p out && cp main.go out/app.go && echo built"]
    artifacts: [out/**]
  test:
    needs: [build]
    image: golang:1.26
    steps:
      - test "$(cat out/app.go)" = "package main"
      - mkdir -p reports && printf '<testsuite name="t" tests="2" failures="0"><testcase classname="a" name="one"/><testcase classname="a" name="two"/></testsuite>' > reports/unit.xml
    reports: {junit: reports/unit.xml}
`})
	s := startPavedServer(t, t.TempDir(), "--executor", "kubernetes", "--kube-config", c.Kubeconfig, "--kube-namespace-prefix", "e2e-")
	s.post(t, "/api/v1/repos", map[string]string{"full_name": "e2e/kube", "clone_url": dir, "team": "shop"})
	id := s.post(t, "/api/v1/runs", map[string]string{"repo": "e2e/kube", "ref": "main"})["id"].(string)

	played := map[string]bool{}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var r struct{ Phase run.Phase }
		s.get(t, "/api/v1/runs/"+id, &r)
		if r.Phase.Done() {
			if r.Phase != run.Succeeded {
				t.Fatalf("run %s ended %s\n%s", id, r.Phase, s.stderr)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s still %s after 3 minutes; pods played %v\n%s", id, r.Phase, played, s.stderr)
		}
		pods, err := c.Client.CoreV1().Pods("e2e-shop").List(ctx, metav1.ListOptions{})
		if err != nil && !strings.Contains(err.Error(), "not found") {
			t.Fatal(err)
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if played[p.Name] || p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
				continue
			}
			played[p.Name] = true
			codes := kubetest.PlayPod(t, c.Client, p)
			for name, code := range codes {
				if code != 0 {
					t.Errorf("pod %s: container %s exited %d", p.Name, name, code)
				}
			}
			kubetest.EndPod(t, c.Client, p, codes)
		}
		time.Sleep(100 * time.Millisecond) // polling the run and the pods with a deadline
	}
	if len(played) != 2 {
		t.Errorf("pods played: %v, want build's and test's", played)
	}

	var list struct{ Events []run.Event }
	s.get(t, "/api/v1/runs/"+id+"/events", &list)
	var stored []run.Artifact
	var tests int
	for _, e := range list.Events {
		switch {
		case e.Type == run.ArtifactsStored && e.Stage == "build":
			stored = e.Artifacts
		case e.Type == run.TestsReported && e.Stage == "test":
			tests = e.Tests.Total
		}
	}
	if len(stored) != 1 || stored[0].Path != "out/app.go" || stored[0].Digest == "" {
		t.Errorf("build's artifacts %+v", stored)
	}
	if tests != 2 {
		t.Errorf("tests reported by test's pod: %d, want 2", tests)
	}
}
