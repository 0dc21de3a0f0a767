package promote_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paved/paved/internal/store"
)

// cluster stands in for the cluster side of a gitops environment (Argo CD or Flux, which
// cannot run here): it reads the digest the config repository's kustomization holds and
// writes it to the status file as running and healthy, until ctx ends.
func cluster(ctx context.Context, bare, file, status string) {
	for ctx.Err() == nil {
		out, err := exec.Command("git", "--git-dir", bare, "show", "main:"+file).Output()
		if err == nil {
			for _, l := range strings.Split(string(out), "\n") {
				if d, ok := strings.CutPrefix(strings.TrimSpace(l), "digest: "); ok {
					_ = os.WriteFile(status, fmt.Appendf(nil, `{"digest": %q, "healthy": true}`, d), 0o644)
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Issue #8's gitops acceptance: each promotion into a gitops environment is exactly one
// commit to the config repository (a real bare git repository) with the freight's digest,
// and is done when the cluster side reports it running; drift is then seen and reported.
func TestGitOpsPromotion(t *testing.T) {
	t.Parallel()
	bare := filepath.Join(t.TempDir(), "config.git")
	gitIn(t, "", "init", "-q", "--bare", "-b", "main", bare)
	work := t.TempDir()
	gitIn(t, work, "clone", "-q", bare, ".")
	const file = "overlays/prod/kustomization.yaml"
	if err := os.MkdirAll(filepath.Join(work, "overlays/prod"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, file), []byte("# prod\nresources: [../../base]\nimages:\n- name: ghcr.io/acme/web\n  newTag: v1 # until paved sets the digest\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitIn(t, work, "add", "-A")
	gitIn(t, work, "commit", "-q", "-m", "initial")
	gitIn(t, work, "push", "-q", "origin", "HEAD:main")
	status := filepath.Join(t.TempDir(), "status.json")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { cluster(ctx, bare, file, status); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	fx := newFixtureWith(t, fmt.Sprintf(`environments:
  - name: dev
  - name: prod
    approval: none
    gitops:
      repo: %s
      file: %s
      image: ghcr.io/acme/web
      status_file: %s
      timeout: 20s
      poll: 10ms
`, bare, file, status))
	for i := range 2 {
		fx.clk.Add(time.Minute) // deployments list newest first by start time
		f := fx.freight(t, fx.commit(t, fmt.Sprintf("f%d.go", i)))
		p, err := fx.svc.Promote(t.Context(), f.ID, "prod", "bo")
		if err != nil {
			t.Fatal(err)
		}
		p = fx.wait(t, p.ID, store.PromotionSucceeded)
		digest := f.Artifacts["deploy-dev"]
		if n := gitIn(t, "", "--git-dir", bare, "rev-list", "--count", "main"); n != fmt.Sprint(i+2) {
			t.Fatalf("after promotion %d the config repository has %s commits, want %d", i+1, n, i+2)
		}
		head := gitIn(t, "", "--git-dir", bare, "rev-parse", "main")
		msg := gitIn(t, "", "--git-dir", bare, "log", "-1", "--format=%s", "main")
		content := gitIn(t, "", "--git-dir", bare, "show", "main:"+file)
		if p.GitOpsCommit != head || msg != "promote "+f.Alias+" to prod" || !strings.Contains(content, "digest: "+digest) ||
			!strings.Contains(content, "newTag: v1 # until paved sets the digest") {
			t.Fatalf("promotion %+v; head %s %q:\n%s", p, head, msg, content)
		}
		deps, err := fx.st.DeploymentList(t.Context(), store.DeploymentListParams{Environment: "prod", Limit: 1})
		if err != nil || len(deps) != 1 || deps[0].Strategy != "gitops" || deps[0].Artifact != digest || deps[0].Outcome != store.DeploymentSucceeded {
			t.Fatalf("prod deployments %+v, %v", deps, err)
		}
	}
	fx.dep.mu.Lock()
	if n := len(fx.dep.got); n != 2 { // the two dev deployments of the fixture; prod never used the deployer
		t.Errorf("deployer ran %d times, want 2 (dev only)", n)
	}
	fx.dep.mu.Unlock()

	// The cluster side stops following the repository and runs something else: drift.
	cancel()
	<-done
	if err := os.WriteFile(status, []byte(`{"digest": "sha256:feed", "healthy": true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	fx.clk.Add(time.Minute)
	if err := fx.svc.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	d, ok := fx.svc.Drift("prod")
	if !ok || !d.Drifted || !strings.Contains(d.Reason, "but the environment runs sha256:feed") {
		t.Errorf("drift = %+v, %v", d, ok)
	}
}
