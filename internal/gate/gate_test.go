package gate

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/schedule"
)

func TestDefaultPolicyPerEnvironment(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	fs := func(sev ...string) []run.Finding {
		var out []run.Finding
		for i, s := range sev {
			out = append(out, run.Finding{Rule: "r" + s, Severity: s, File: "go.mod", Line: i + 1})
		}
		return out
	}
	cases := []struct {
		env      string
		findings []run.Finding
		want     string
	}{
		{"dev", fs("CRITICAL", "HIGH"), "warn: 2 findings at or above HIGH warn in dev: rCRITICAL at go.mod:1, rHIGH at go.mod:2"},
		{"dev", fs("MEDIUM"), "pass: 1 finding, none at or above what dev warns on"},
		{"staging", fs("HIGH", "LOW"), "block: 1 finding at or above HIGH block staging: rHIGH at go.mod:1"},
		{"staging", fs("MEDIUM"), "warn: 1 finding at or above MEDIUM warn in staging: rMEDIUM at go.mod:1"},
		{"production", fs("MEDIUM", "MEDIUM", "MEDIUM", "HIGH"), "block: 4 findings at or above MEDIUM block production: rHIGH at go.mod:4, rMEDIUM at go.mod:1, rMEDIUM at go.mod:2, and 1 more"},
		{"production", fs("LOW"), "warn: 1 finding at or above LOW warn in production: rLOW at go.mod:1"},
		{"production", nil, "pass: no findings"},
		{"qa", fs("MEDIUM"), "block: 1 finding at or above MEDIUM block qa: rMEDIUM at go.mod:1"},
	}
	for _, c := range cases {
		g := run.Gate{Environment: c.env}
		r, _ := p.Rule(c.env)
		Decide(&g, r, c.findings)
		if got := g.Decision + ": " + g.Reason; got != c.want {
			t.Errorf("%s %v:\ngot  %s\nwant %s", c.env, c.findings, got, c.want)
		}
	}
	if s := p.Strictest(); s != "production" {
		t.Errorf("strictest %q", s)
	}
}

func TestEnvironmentFromWithThenDownstreamDeploysThenStrictest(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	pl := &pipeline.Pipeline{Stages: []*pipeline.Stage{
		{Name: "scan"}, {Name: "other"},
		{Name: "deploy-dev", Needs: []string{"scan"}, Deploy: &pipeline.Deploy{Environment: "dev"}},
		{Name: "smoke", Needs: []string{"deploy-dev"}},
		{Name: "deploy-staging", Needs: []string{"smoke"}, Deploy: &pipeline.Deploy{Environment: "staging"}},
		{Name: "deploy-prod", Needs: []string{"other"}, Deploy: &pipeline.Deploy{Environment: "production"}},
	}}
	for _, c := range []struct {
		stage string
		with  map[string][]string
		want  string
	}{
		{"scan", map[string][]string{"environment": {"dev"}}, "dev with"},
		{"scan", nil, "staging deploy"},
		{"smoke", nil, "staging deploy"},
		{"other", nil, "production deploy"},
		{"deploy-prod", nil, "production default"},
	} {
		env, from := p.Environment(pl, c.stage, c.with)
		if got := env + " " + from; got != c.want {
			t.Errorf("%s %v: got %q, want %q", c.stage, c.with, got, c.want)
		}
	}
}

func TestParseSeverity(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Severity{"high": High, "MODERATE": Medium, "none": None, "Critical": Critical, "error": High} {
		if got, err := ParseSeverity(in); err != nil || got != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	if _, err := ParseSeverity("severe"); err == nil || !strings.Contains(err.Error(), "use one of critical") {
		t.Errorf("bad severity: %v", err)
	}
}

type recorder struct {
	mu     sync.Mutex
	lines  []string
	events []run.Event
}

func (r *recorder) Log(l string) { r.mu.Lock(); r.lines = append(r.lines, l); r.mu.Unlock() }
func (r *recorder) Event(e run.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

func gitRepo(t *testing.T, files map[string]string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@t.invalid", "-C", dir}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "--quiet", "--initial-branch=main")
	git("add", "-A")
	git("commit", "--quiet", "-m", "init")
	return dir, git("rev-parse", "HEAD")
}

// TestKindScansTheCommitWithArtifactsAndRecordsOneDecision runs a Kind over a real git
// commit (not its work tree) with an upstream artifact laid over it.
func TestKindScansTheCommitWithArtifactsAndRecordsOneDecision(t *testing.T) {
	t.Parallel()
	repo, sha := gitRepo(t, map[string]string{"a.txt": "committed\n", "sub/b.txt": "also\n"})
	os.WriteFile(filepath.Join(repo, "a.txt"), []byte("not committed\n"), 0o644)
	blobs, err := cache.NewBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	digest, size, err := blobs.Put(strings.NewReader("from upstream\n"))
	if err != nil {
		t.Fatal(err)
	}
	var seen map[string]string
	k := &Kind{Name: "gate/test", Blobs: blobs, Artifacts: true, TempDir: t.TempDir(),
		Scan: func(ctx context.Context, in Input) (Output, error) {
			seen = map[string]string{}
			filepath.WalkDir(in.Dir, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					b, _ := os.ReadFile(p)
					rel, _ := filepath.Rel(in.Dir, p)
					seen[filepath.ToSlash(rel)] = string(b)
				}
				return err
			})
			return Output{Findings: []run.Finding{{Rule: "x", Severity: "HIGH", File: "a.txt", Line: 1}}}, nil
		}}
	job := schedule.KindJob{RunID: "r1", Stage: "scan", Attempt: 1,
		Info:        &run.Info{Source: run.Source{Repo: repo, SHA: sha}, Pipeline: &pipeline.Pipeline{}},
		Def:         &pipeline.Stage{Name: "scan", Uses: "gate/test", With: map[string][]string{"environment": {"staging"}}},
		ArtifactsIn: []execute.Artifact{{Path: "reports/r.txt", Digest: digest, Size: size, Mode: 0o644}},
	}
	rec := &recorder{}
	res, err := k.Run(context.Background(), job, rec)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a.txt": "committed\n", "sub/b.txt": "also\n", "reports/r.txt": "from upstream\n"}
	if len(seen) != len(want) {
		t.Errorf("workspace %v, want %v", seen, want)
	}
	for k, v := range want {
		if seen[k] != v {
			t.Errorf("workspace %s = %q, want %q", k, seen[k], v)
		}
	}
	if !res.Failed || res.Reason != "1 finding at or above HIGH block staging: x at a.txt:1" {
		t.Errorf("result %+v", res)
	}
	if len(rec.events) != 1 || rec.events[0].Type != run.GateEvaluated {
		t.Fatalf("events %+v", rec.events)
	}
	g := rec.events[0].Gate
	if g.Decision != Block || g.Environment != "staging" || g.EnvironmentFrom != "with" || g.Policy != "paved-default@1" || g.BlockAt != "HIGH" || g.Counts["HIGH"] != 1 {
		t.Errorf("gate %+v", g)
	}

	// with: overrides the thresholds; a bad value says what to write.
	job.Def.With = map[string][]string{"environment": {"staging"}, "block_at": {"critical"}}
	res, err = k.Run(context.Background(), job, &recorder{})
	if err != nil || res.Failed {
		t.Errorf("block_at critical: %+v %v", res, err)
	}
	job.Def.With = map[string][]string{"block_at": {"severe"}}
	if _, err := k.Run(context.Background(), job, &recorder{}); err == nil || !strings.Contains(err.Error(), "block_at") {
		t.Errorf("bad block_at: %v", err)
	}
}

func TestCheckoutOfADirectorySkipsGit(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, ".git"), 0o755)
	os.WriteFile(filepath.Join(src, ".git", "config"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(src, "f"), []byte("y"), 0o644)
	os.Symlink("/etc/passwd", filepath.Join(src, "link"))
	dst := t.TempDir()
	if err := Checkout(context.Background(), run.Source{Dir: src}, dst); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dst)
	if len(entries) != 1 || entries[0].Name() != "f" {
		t.Errorf("copied %v, want only f", entries)
	}
	if err := Checkout(context.Background(), run.Source{Repo: src, SHA: "not-a-sha"}, dst); err == nil {
		t.Error("a bad SHA was accepted")
	}
}
