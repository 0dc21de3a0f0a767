package sign

import (
	"testing"
	"time"

	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
)

func TestStageBuild(t *testing.T) {
	t.Parallel()
	p, err := pipeline.Compile(".paved.yml", []byte("stages:\n  build:\n    steps:\n      - run: make app\n      - run: make test\n"), pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		ref     string
		trigger run.Trigger
		want    string
	}{
		{"refs/heads/main", run.Trigger{Kind: "push", Branch: "main"}, "refs/heads/main"},
		{"main", run.Trigger{Kind: "manual", Branch: "main", Provider: "api"}, "refs/heads/main"},
		{"v1.0.0", run.Trigger{Kind: "manual", Tag: "v1.0.0"}, "refs/tags/v1.0.0"},
		{"refs/pull/7/head", run.Trigger{Kind: "pull_request", Branch: "main"}, "refs/pull/7/head"},
	} {
		info := &run.Info{Repo: "acme/payments", Ref: c.ref, SHA: "abc", File: ".paved.yml", Trigger: c.trigger, Pipeline: p}
		b := StageBuild(info, "run-1", "build", 2, start, start.Add(time.Minute),
			[]run.Artifact{{Path: "gen/x", Type: run.ArtifactFile, Digest: digestOf([]byte("x"))}, {Path: "gen", Type: run.ArtifactDir}}, "")
		if b.Ref != c.want || len(b.Steps) != 2 || b.Steps[1] != "make test" || len(b.Inputs) != 1 || b.Attempt != 2 {
			t.Errorf("ref %q: %+v", c.ref, b)
		}
		if _, err := ProvenanceStatement(Artifact{Name: "out/app", Digest: digestOf([]byte("app"))}, b); err != nil {
			t.Errorf("ref %q: %v", c.ref, err)
		}
	}
}
