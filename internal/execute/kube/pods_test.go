package kube_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/execute/kube"
	"github.com/paved/paved/internal/kube/kubetest"
)

// podServer is an executor whose Handler is served on 127.0.0.1, as the API mounts it.
type podServer struct {
	ex    *kube.Executor
	url   string
	blobs *cache.Blobs
}

func newPodServer(t *testing.T, c *kubetest.Cluster) *podServer {
	t.Helper()
	blobs, err := cache.NewBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ps := &podServer{blobs: blobs}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	ps.url = srv.URL
	ps.ex = newExecutorWith(t, c, kube.Config{ServerURL: func() string { return srv.URL }, Blobs: blobs})
	mux.Handle("/api/v1/pod/", http.StripPrefix("/api/v1/pod", ps.ex.Handler()))
	return ps
}

// gitRepo makes a repository with one commit and returns its path and the commit.
func gitRepo(t *testing.T, files map[string]string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main")
	git("add", "-A")
	git("commit", "-qm", "one")
	return dir, git("rev-parse", "HEAD")
}

func artifactJob(t *testing.T, ps *podServer, stage string, steps ...string) execute.Job {
	t.Helper()
	repo, sha := gitRepo(t, map[string]string{"main.go": "package main\n", "docs/README": "hello\n"})
	digest, size, err := ps.blobs.Put(strings.NewReader("upstream binary\n"))
	if err != nil {
		t.Fatal(err)
	}
	j := execute.Job{RunID: "run-0002", Stage: stage, Attempt: 1, Team: "payments", Image: "alpine:3",
		Source:      execute.Source{Repo: repo, SHA: sha},
		ArtifactsIn: []execute.Artifact{{Path: "in/app", Digest: digest, Size: size, Mode: 0o755}},
		Artifacts:   []string{"out/**", "VERSION"},
		Reports:     []string{"reports/*.xml"},
	}
	for i, s := range steps {
		j.Steps = append(j.Steps, execute.Step{Name: "step" + string(rune('0'+i)), Run: s})
	}
	return j
}

// TestPodFetchesAndSends: the pod's fetch container gets the source checkout (a
// standalone git repository) and the upstream artifact from the server; the collect
// container sends back what the stage's globs match, which the executor stores by digest
// and reports, as the local executor would.
func TestPodFetchesAndSends(t *testing.T) {
	t.Parallel()
	c := kubetest.Get(t)
	ps := newPodServer(t, c)
	ns := ps.ex.Namespace("payments")
	j := artifactJob(t, ps, "build",
		`test "$(cat in/app)" = "upstream binary" && test -f docs/README && git rev-parse HEAD > VERSION`,
		`mkdir -p out/bin reports && cp main.go out/bin/app.go && ln -s bin/app.go out/link && echo '<testsuite/>' > reports/unit.xml`)
	r := start(ps.ex, j)
	p := podOf(t, c, ns, j)
	if len(p.Spec.Containers) != 2 || p.Spec.Containers[1].Name != "collect" {
		t.Fatalf("containers %+v: want stage and collect", p.Spec.Containers)
	}
	codes := kubetest.PlayPod(t, c.Client, p)
	if codes["fetch"] != 0 || codes["stage"] != 0 || codes["collect"] != 0 {
		t.Fatalf("exit codes %v", codes)
	}
	kubetest.EndPod(t, c.Client, p, codes)
	r.wait(t)
	if r.err != nil || r.res.Failed {
		t.Fatalf("result %+v, err %v", r.res, r.err)
	}
	got := map[string]execute.Artifact{}
	for _, a := range r.res.Artifacts {
		got[a.Path] = a
	}
	if len(got) != 3 || got["out/bin/app.go"].Digest == "" || got["out/link"].Link != "bin/app.go" || got["VERSION"].Size != 41 {
		t.Fatalf("artifacts %+v", r.res.Artifacts)
	}
	f, err := ps.blobs.Open(got["out/bin/app.go"].Digest)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if string(b) != "package main\n" {
		t.Errorf("stored artifact %q", b)
	}
	if len(r.res.Reports) != 1 || r.res.Reports[0].Path != "reports/unit.xml" || string(r.res.Reports[0].Data) != "<testsuite/>\n" {
		t.Errorf("reports %+v, note %q", r.res.Reports, r.res.ReportsNote)
	}
	gone(t, c, ns, p.Name)
}

// TestPodFailedStageSendsReports: a failing step still gets its reports back; its
// artifacts are not sent.
func TestPodFailedStageSendsReports(t *testing.T) {
	t.Parallel()
	c := kubetest.Get(t)
	ps := newPodServer(t, c)
	ns := ps.ex.Namespace("payments")
	j := artifactJob(t, ps, "test",
		`mkdir -p reports out && echo '<testsuite failures="1"/>' > reports/unit.xml && echo x > out/partial && exit 3`)
	r := start(ps.ex, j)
	p := podOf(t, c, ns, j)
	codes := kubetest.PlayPod(t, c.Client, p)
	if codes["stage"] != 3 || codes["collect"] != 0 {
		t.Fatalf("exit codes %v", codes)
	}
	kubetest.EndPod(t, c.Client, p, codes)
	r.wait(t)
	if r.err != nil || !r.res.Failed || r.res.ExitCode != 3 || len(r.res.Artifacts) != 0 {
		t.Fatalf("result %+v, err %v", r.res, r.err)
	}
	if len(r.res.Reports) != 1 || !strings.Contains(string(r.res.Reports[0].Data), `failures="1"`) {
		t.Errorf("reports %+v, note %q", r.res.Reports, r.res.ReportsNote)
	}
}

// TestPodArtifactGlobMatchesNothing: the stage fails with the local executor's error naming
// the glob, not with a silent empty list.
func TestPodArtifactGlobMatchesNothing(t *testing.T) {
	t.Parallel()
	c := kubetest.Get(t)
	ps := newPodServer(t, c)
	ns := ps.ex.Namespace("payments")
	j := artifactJob(t, ps, "package", `mkdir -p out && echo 1 > out/a`)
	r := start(ps.ex, j)
	p := podOf(t, c, ns, j)
	codes := kubetest.PlayPod(t, c.Client, p)
	kubetest.EndPod(t, c.Client, p, codes)
	r.wait(t)
	if r.err == nil || !strings.Contains(r.err.Error(), `"VERSION"`) {
		t.Fatalf("want an error naming the glob VERSION; got %v (%+v)", r.err, r.res)
	}
}

// TestPodToken: the pod routes answer only to the token of an attempt being followed.
func TestPodToken(t *testing.T) {
	t.Parallel()
	c := kubetest.Get(t)
	ps := newPodServer(t, c)
	ns := ps.ex.Namespace("payments")
	j := artifactJob(t, ps, "lint", `true`)
	r := start(ps.ex, j)
	p := podOf(t, c, ns, j)
	sec, err := c.Client.CoreV1().Secrets(ns).Get(context.Background(), p.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	token := string(sec.Data["PAVED_POD_TOKEN"])
	get := func(tok string) int {
		req, _ := http.NewRequest(http.MethodGet, ps.url+"/api/v1/pod/workspace", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			names := tarNames(t, resp.Body)
			if !names["main.go"] || !names["in/app"] || !names[".git/HEAD"] || names[".git/objects/info/alternates"] {
				t.Errorf("workspace entries %v", names)
			}
		}
		return resp.StatusCode
	}
	if len(token) < 40 {
		t.Fatalf("token %q", token)
	}
	if code := get(""); code != http.StatusUnauthorized {
		t.Errorf("no token: %d", code)
	}
	if code := get(token + "x"); code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d", code)
	}
	if code := get(token); code != http.StatusOK {
		t.Errorf("the pod's token: %d", code)
	}
	kubetest.EndPod(t, c.Client, p, map[string]int{"stage": 0, "collect": 1})
	r.wait(t)
	if r.err == nil {
		t.Errorf("a collect container that failed before sending the artifacts must fail the stage: %+v", r.res)
	}
	if code := get(token); code != http.StatusUnauthorized {
		t.Errorf("the token after its attempt ended: %d", code)
	}
}

func tarNames(t *testing.T, r io.Reader) map[string]bool {
	t.Helper()
	zr, err := gzip.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	names := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names[strings.TrimSuffix(h.Name, "/")] = true
	}
}

// TestPodFetchFails: a workspace the server cannot build (the repository is gone) fails
// the stage with the fetch container's complaint, not as a step that failed.
func TestPodFetchFails(t *testing.T) {
	t.Parallel()
	c := kubetest.Get(t)
	ps := newPodServer(t, c)
	ns := ps.ex.Namespace("payments")
	j := artifactJob(t, ps, "vet", `true`)
	j.Source = execute.Source{Repo: filepath.Join(t.TempDir(), "gone"), SHA: "0123abcd"}
	r := start(ps.ex, j)
	p := podOf(t, c, ns, j)
	codes := kubetest.PlayPod(t, c.Client, p)
	if codes["fetch"] == 0 {
		t.Fatalf("exit codes %v", codes)
	}
	kubetest.EndPod(t, c.Client, p, codes)
	r.wait(t)
	if r.err == nil || !strings.Contains(r.err.Error(), "could not fetch its workspace: its fetch container ended with") {
		t.Fatalf("want the fetch's failure; got %v (%+v)", r.err, r.res)
	}
}
