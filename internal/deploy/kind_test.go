package deploy

import (
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/pipeline"
)

func TestPickArtifact(t *testing.T) {
	t.Parallel()
	in := []execute.Artifact{
		{Path: "out/app", Digest: "sha256:a", Mode: 0o755},
		{Path: "out/README", Digest: "sha256:b", Mode: 0o644},
		{Path: "out", Mode: fs.ModeDir | 0o755},
	}
	if d, err := pickArtifact("", in); err != nil || d != "sha256:a" {
		t.Errorf("the only executable: %q, %v", d, err)
	}
	if d, err := pickArtifact("./out/README", in); err != nil || d != "sha256:b" {
		t.Errorf("named: %q, %v", d, err)
	}
	if _, err := pickArtifact("out/nope", in); err == nil || !strings.Contains(err.Error(), "out/README, out/app") {
		t.Errorf("missing: %v", err)
	}
	two := append(in, execute.Artifact{Path: "out/tool", Digest: "sha256:c", Mode: 0o700})
	if _, err := pickArtifact("", two); err == nil || !strings.Contains(err.Error(), "say which with deploy.artifact") {
		t.Errorf("two executables: %v", err)
	}
	if _, err := pickArtifact("", nil); err == nil || !strings.Contains(err.Error(), "no executable") {
		t.Errorf("none: %v", err)
	}
}

func TestSpecFrom(t *testing.T) {
	t.Parallel()
	s, err := SpecFrom(&pipeline.Deploy{Environment: "prod", Strategy: "canary", Steps: []int{10, 50},
		Readiness: &pipeline.DeployProbe{Path: "/healthz", Period: "200ms"},
		Analysis:  &pipeline.DeployAnalysis{Interval: "1s", MaxErrorRate: 0.01, Source: "prometheus", Prometheus: map[string]string{"url": "http://p:9090"}},
		SLOWindow: "2s"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Readiness.Period != 200*time.Millisecond || s.Analysis.Interval != time.Second || s.SLOWindow != 2*time.Second ||
		s.Analysis.Prometheus.URL != "http://p:9090" || s.Analysis.MaxErrorRate != 0.01 {
		t.Errorf("spec %+v", s)
	}
	if got := s.Steps; len(got) != 3 || got[2] != 100 {
		t.Errorf("steps %v, want 100 appended", got)
	}
	if s.Replicas != 1 || s.MaxSurge != "25%" || s.Analysis.Count != 3 || s.Analysis.MinSamples != 50 || s.KeepWarm != 30*time.Minute {
		t.Errorf("defaults %+v", s)
	}
	if _, err := SpecFrom(&pipeline.Deploy{Environment: "x", Pause: "soon"}); err == nil {
		t.Error("bad duration: no error")
	}
	for v, want := range map[string]int{"25%": 1, "100%": 3, "2": 2, "0": 0} {
		if got, err := scaled(v, 3, true); err != nil || got != want {
			t.Errorf("scaled(%s, 3) = %d, %v", v, got, err)
		}
	}
	if _, err := scaled("x%", 3, true); err == nil {
		t.Error("bad scale: no error")
	}
}
