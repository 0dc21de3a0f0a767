package deploy_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/paved/paved/internal/deploy"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/store/sqlite"
)

// TestStartResumesKubernetesEnvironments: on start, an environment whose last deployment
// went to Kubernetes is handed to the target to resume (its pending scale-downs), and is
// not restored as local processes. The cluster itself is package deploy/kube's to test:
// here the target is a stand-in behind the Config's functions.
func TestStartResumesKubernetesEnvironments(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "paved.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	resumed := make(chan deploy.Spec, 1)
	start := func() *deploy.Controller {
		c, err := deploy.New(deploy.Config{Dir: filepath.Join(dir, "deploy"), Blobs: blobs, History: st,
			Kubernetes: func(context.Context, string, deploy.Spec, string, deploy.Reporter) (string, string, error) {
				return store.DeploymentSucceeded, "", nil
			},
			KubernetesResume: func(_ context.Context, spec deploy.Spec) error { resumed <- spec; return nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := start()
	spec := deploy.Spec{Environment: "cluster-prod", Strategy: deploy.BlueGreen, Target: deploy.TargetKubernetes,
		Kubernetes: &deploy.Kubernetes{Context: "east", Namespace: "shop", Image: "registry.example/shop:1"}}
	if d, err := c.Deploy(t.Context(), deploy.Request{Spec: spec, Artifact: digests[v1]}, nil); err != nil || d.Outcome != store.DeploymentSucceeded {
		t.Fatalf("deploy: %+v, %v", d, err)
	}
	c.Stop()
	c = start()
	defer c.Stop()
	select {
	case got := <-resumed:
		if got.Environment != "cluster-prod" || got.Kubernetes == nil || got.Kubernetes.Context != "east" || got.Kubernetes.Namespace != "shop" {
			t.Errorf("resumed %+v", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the kubernetes environment was not resumed")
	}
	if _, err := c.Status("cluster-prod"); err == nil {
		t.Error("the kubernetes environment runs as local processes after the restart")
	}
}
