package gitops

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=ops", "-c", "user.email=ops@example.com"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// configRepo makes a bare config repository holding file with content, and returns its path.
func configRepo(t *testing.T, file, content string) string {
	t.Helper()
	bare := filepath.Join(t.TempDir(), "config.git")
	git(t, "", "init", "-q", "--bare", "-b", "main", bare)
	work := t.TempDir()
	git(t, work, "clone", "-q", bare, ".")
	if err := os.MkdirAll(filepath.Dir(filepath.Join(work, file)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, file), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, work, "add", "-A")
	git(t, work, "commit", "-q", "-m", "initial")
	git(t, work, "push", "-q", "origin", "HEAD:main")
	return bare
}

func digestOf(n int) string { return "sha256:" + strings.Repeat(fmt.Sprint(n%10), 64) }

// A promotion is exactly one commit with the digest and the freight in its message; the same
// promotion again (a resume) adds none; a status file the cluster side writes says when it
// runs.
func TestCommitOncePerPromotionAndWaitForStatus(t *testing.T) {
	t.Parallel()
	src, _ := os.ReadFile("testdata/edit/kustomize-existing.yaml")
	bare := configRepo(t, "overlays/prod/kustomization.yaml", string(src))
	status := filepath.Join(t.TempDir(), "status.json")
	tg, err := New(Config{Repo: bare, File: "overlays/prod/kustomization.yaml", Image: "ghcr.io/acme/web", StatusFile: status,
		Timeout: 20 * time.Second, Poll: 10 * time.Millisecond}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if tg.Config().Kind != Kustomize {
		t.Fatalf("kind %q, want kustomize from the file name", tg.Config().Kind)
	}
	ctx := t.Context()
	req := Request{Environment: "prod", Digest: digestOf(7), Freight: "f-0123456789", Promotion: "prm-1", By: "bo"}
	res, err := tg.Commit(ctx, req)
	if err != nil || !res.Committed {
		t.Fatalf("commit: %+v, %v", res, err)
	}
	if again, err := tg.Commit(ctx, req); err != nil || again.Committed || again.Commit != res.Commit {
		t.Fatalf("the same promotion again: %+v, %v; want no new commit", again, err)
	}
	if n := git(t, bare, "rev-list", "--count", "main"); n != "2" {
		t.Fatalf("%s commits, want the initial one and the promotion's", n)
	}
	msg := git(t, bare, "log", "-1", "--format=%B", "main")
	if !strings.HasPrefix(msg, "promote f-0123456789 to prod") || !strings.Contains(msg, digestOf(7)) {
		t.Errorf("commit message:\n%s", msg)
	}
	file := git(t, bare, "show", "main:overlays/prod/kustomization.yaml")
	if !strings.Contains(file, "digest: "+digestOf(7)+" # set by paved") || !strings.Contains(file, "# shared manifests") {
		t.Errorf("file after the promotion:\n%s", file)
	}
	if got, err := tg.Configured(ctx); err != nil || got != digestOf(7) {
		t.Errorf("configured = %q, %v", got, err)
	}

	// The cluster side: it reports the old digest (drift), then the new one, healthy.
	write := func(digest string, healthy bool) {
		if err := os.WriteFile(status, fmt.Appendf(nil, `{"digest": %q, "healthy": %v}`, digest, healthy), 0o644); err != nil {
			t.Error(err)
		}
	}
	write(digestOf(0), true)
	d, err := tg.CheckDrift(ctx, time.Now())
	if err != nil || !d.Drifted || !strings.Contains(d.Reason, "holds "+digestOf(7)+" but the environment runs "+digestOf(0)) {
		t.Errorf("drift = %+v, %v", d, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := tg.WaitHealthy(ctx, digestOf(7))
		done <- err
	}()
	write(digestOf(7), false)
	select {
	case err := <-done:
		t.Fatalf("healthy before the status said so: %v", err)
	case <-time.After(50 * time.Millisecond): // the waiter must still be polling
	}
	write(digestOf(7), true)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d, err := tg.CheckDrift(ctx, time.Now()); err != nil || d.Drifted {
		t.Errorf("no drift expected: %+v, %v", d, err)
	}
}

// A Helm values file, a health URL, and another writer's commit in between, which stays.
func TestHelmValuesHealthURLAndOtherWriters(t *testing.T) {
	t.Parallel()
	bare := configRepo(t, "values-prod.yaml", "image:\n  repository: ghcr.io/acme/web\n  tag: v1 # the chart's appVersion otherwise\n")
	var running atomic.Value
	running.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := running.Load().(string)
		if d == "" {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, `{"digest": %q}`, d)
	}))
	t.Cleanup(srv.Close)
	tg, err := New(Config{Repo: bare, File: "values-prod.yaml", Path: "image.tag", HealthURL: srv.URL, Timeout: 300 * time.Millisecond, Poll: 10 * time.Millisecond}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := tg.Commit(ctx, Request{Environment: "prod", Digest: digestOf(1), Freight: "f-1", Promotion: "prm-1"}); err != nil {
		t.Fatal(err)
	}
	// Someone else pushes meanwhile; the next promotion lands on top of it.
	work := t.TempDir()
	git(t, work, "clone", "-q", bare, ".")
	if err := os.WriteFile(filepath.Join(work, "README.md"), []byte("ops notes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, work, "add", "-A")
	git(t, work, "commit", "-q", "-m", "notes")
	git(t, work, "push", "-q", "origin", "HEAD:main")
	if _, err := tg.Commit(ctx, Request{Environment: "prod", Digest: digestOf(2), Freight: "f-2", Promotion: "prm-2"}); err != nil {
		t.Fatal(err)
	}
	if n := git(t, bare, "rev-list", "--count", "main"); n != "4" {
		t.Errorf("%s commits, want 4", n)
	}
	if file := git(t, bare, "show", "main:values-prod.yaml"); !strings.Contains(file, "tag: "+digestOf(2)+" # the chart's appVersion") {
		t.Errorf("values:\n%s", file)
	}
	if _, err := tg.WaitHealthy(ctx, digestOf(2)); !errors.Is(err, ErrUnhealthy) {
		t.Errorf("a health URL answering 503: %v, want ErrUnhealthy", err)
	}
	running.Store(digestOf(2))
	if _, err := tg.WaitHealthy(ctx, digestOf(2)); err != nil {
		t.Error(err)
	}
	running.Store(digestOf(1))
	if d, _ := tg.CheckDrift(ctx, time.Now()); !d.Drifted {
		t.Errorf("drift not seen: %+v", d)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	_, err := New(Config{File: "../x.yaml", Kind: "jsonnet"}, "")
	for _, want := range []string{"repo: give", "file \"../x.yaml\"", "kind \"jsonnet\"", "give one health signal"} {
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: want %q", err, want)
		}
	}
}
