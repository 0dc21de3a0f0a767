package forge_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paved/paved/internal/forge"
	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/promote"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/trigger"
)

func gitRun(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=paved", "-c", "user.email=paved@example.com",
		"-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    spec:
      containers:
        - {name: app, image: "registry.example.com/web:%s"}
`

// commitImage writes the deployment with tag on the checked-out branch and commits it.
func commitImage(t *testing.T, repo, tag string) string {
	t.Helper()
	p := filepath.Join(repo, "deploy", "k8s", "web.yaml")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(fmt.Sprintf(deployment, tag)), 0o644); err != nil {
		t.Fatal(err)
	}
	gitRun(t, repo, "add", "-A")
	gitRun(t, repo, "commit", "-qm", "web "+tag)
	return gitRun(t, repo, "rev-parse", "HEAD")
}

// A pull request changing a Deployment's image gets one comment naming that field; the
// next push to it edits the same comment (PATCH on GitHub, PUT on GitLab and Bitbucket)
// instead of adding one.
func TestPullRequestCommentCreatedThenEdited(t *testing.T) {
	t.Parallel()
	for _, vendor := range []string{"github", "gitlab", "bitbucket"} {
		t.Run(vendor, func(t *testing.T) {
			t.Parallel()
			repo := t.TempDir()
			gitRun(t, repo, "init", "-q")
			commitImage(t, repo, "1.0")
			gitRun(t, repo, "checkout", "-qb", "feature")
			first := commitImage(t, repo, "1.1")

			composer := &forge.Composer{Trees: forge.GitTrees(&trigger.Git{Dir: t.TempDir()}),
				URL:  func() string { return "https://paved.example.com" },
				Risk: func(files []string) (string, string) { return promote.DefaultRisk.Score(files, true) }}
			e := newEnv(t, vendor, func(c *forge.Config) { c.RunOnly, c.Comment = true, composer.Compose })
			p, err := pipeline.Compile(".paved.yml", []byte("name: web\nstages:\n  build: {steps: [echo ok]}\n"), pipeline.Options{})
			if err != nil {
				t.Fatal(err)
			}
			info := func(sha string) run.Info {
				return run.Info{Repo: repos[vendor], SHA: sha, Ref: "refs/pull/7/head", Source: run.Source{Repo: repo, SHA: sha},
					Trigger:  run.Trigger{Kind: "pull_request", Branch: "main", SourceBranch: "feature", PRNumber: 7},
					Pipeline: p}
			}
			e.run(t, info(first))
			waitFor(t, "the first comment", func() bool { return len(e.f.bodies()) == 1 })
			body := e.f.bodies()[0]
			if !strings.Contains(body, "spec.template.spec.containers[app].image: registry.example.com/web:1.0 → registry.example.com/web:1.1") ||
				!strings.Contains(body, forge.Marker(&run.Info{Pipeline: p})) {
				t.Fatalf("first comment:\n%s", body)
			}

			second := commitImage(t, repo, "1.2")
			e.run(t, info(second))
			waitFor(t, "the comment edited", func() bool {
				b := e.f.bodies()
				return len(b) == 1 && strings.Contains(b[0], "registry.example.com/web:1.0 → registry.example.com/web:1.2")
			})
			var posts, edits int
			for _, r := range e.f.recorded() {
				if !strings.Contains(r.Path, "comments") && !strings.Contains(r.Path, "notes") {
					continue
				}
				switch r.Method {
				case "POST":
					posts++
				case "PATCH", "PUT":
					edits++
				}
			}
			if posts != 1 || edits != 1 {
				t.Fatalf("%d POSTs and %d edits of comments, want 1 and 1:\n%s", posts, edits, lines(e.f.recorded(), ""))
			}
		})
	}
}

// The comment of a run with gates: golden, from a run state folded from events.
func TestCommentGolden(t *testing.T) {
	t.Parallel()
	p, err := pipeline.Compile(".paved.yml", []byte(`name: shop
stages:
  build: {steps: [make]}
  secrets: {uses: gate/secrets}
  vulns: {uses: gate/vulns}
`), pipeline.Options{Kinds: []string{"gate/secrets", "gate/vulns"}})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	evs := []run.Event{{Type: run.RunCreated, Info: &run.Info{Repo: "acme/shop", SHA: sha, Pipeline: p,
		Trigger: run.Trigger{Kind: "pull_request", Branch: "main", PRNumber: 3}}}}
	gates := map[string]*run.Gate{
		"secrets": {Kind: "gate/secrets", Decision: "block", Reason: "1 finding at or above HIGH blocks production",
			Counts: map[string]int{"HIGH": 1}},
		"vulns": {Kind: "gate/vulns", Decision: "warn", Reason: "2 findings | at MEDIUM warn",
			Counts: map[string]int{"MEDIUM": 2, "LOW": 1}},
	}
	for _, s := range []string{"build", "secrets", "vulns"} {
		evs = append(evs, run.Event{Type: run.StageQueued, Stage: s, Attempt: 1}, run.Event{Type: run.StageStarted, Stage: s, Attempt: 1})
		if g := gates[s]; g != nil {
			evs = append(evs, run.Event{Type: run.GateEvaluated, Stage: s, Attempt: 1, Gate: g})
		}
		evs = append(evs, run.Event{Type: run.StageFinished, Stage: s, Attempt: 1, Status: run.StatusSucceeded})
	}
	evs = append(evs, run.Event{Type: run.RunFinished, Status: string(run.Succeeded)})
	for i := range evs {
		evs[i].RunID, evs[i].Seq, evs[i].Time = "run-1", int64(i+1), at
	}
	st, err := run.Fold(evs)
	if err != nil {
		t.Fatal(err)
	}
	c := &forge.Composer{
		Trees: func(context.Context, *run.Info) (base, head fs.FS, changed []string, err error) {
			return os.DirFS("testdata/manifests/plain/base"), os.DirFS("testdata/manifests/plain/head"), []string{"app.yaml", "notes.yaml"}, nil
		},
		URL:  func() string { return "https://paved.example.com" },
		Risk: func(files []string) (string, string) { return promote.DefaultRisk.Score(files, true) },
	}
	body, err := c.Compose(t.Context(), st)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("testdata", "comment.golden.md"), body)
}
