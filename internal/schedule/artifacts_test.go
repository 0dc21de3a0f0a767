package schedule

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/run"
)

func digestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// TestArtifactsFlowDownstream: what a stage stores is recorded in the same append as its
// result, folded into its state, and given to every stage downstream of it (needs of needs
// included), in stage order; a retry's list replaces what an earlier attempt wrote.
func TestArtifactsFlowDownstream(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ":memory:", nil)
	p := stages(
		[3]string{"build", "", "artifact out/app binary\nartifact out/app.sha note\nartifact scratch.txt not kept"},
		[3]string{"flaky", "", "artifact lib/x.so attempt-1\nartifact lib/old.so gone\nattempt 1 exit 3\nattempt 2 artifact lib/x.so attempt-2"},
		[3]string{"test", "build,flaky", "echo testing"},
		[3]string{"deploy", "test", "echo deploying"},
	)
	p.Stages[0].Artifacts = []string{"out/*"}
	p.Stages[1].Artifacts = []string{"lib/x.so"}
	p.Stages[1].Retries = 1
	id := h.create(p)
	st := h.wait(id)
	if st.Phase != run.Succeeded {
		t.Fatalf("phase %s: %s", st.Phase, st.Reason)
	}

	wantBuild := []run.Artifact{
		{Path: "out/app", Type: run.ArtifactFile, Digest: digestOf("binary"), Size: 6, Mode: "0644"},
		{Path: "out/app.sha", Type: run.ArtifactFile, Digest: digestOf("note"), Size: 4, Mode: "0644"},
	}
	wantFlaky := []run.Artifact{{Path: "lib/x.so", Type: run.ArtifactFile, Digest: digestOf("attempt-2"), Size: 9, Mode: "0644"}}
	if got := st.Stage("build").Artifacts; !slices.Equal(got, wantBuild) {
		t.Errorf("build artifacts %+v", got)
	}
	if got := st.Stage("flaky").Artifacts; !slices.Equal(got, wantFlaky) {
		t.Errorf("flaky artifacts %+v (attempt %d)", got, st.Stage("flaky").Attempt)
	}
	if st.Stage("test").Artifacts != nil {
		t.Errorf("test has no artifacts: but %+v", st.Stage("test").Artifacts)
	}

	evs := h.events(id)
	checkGapFree(t, evs)
	stored := 0
	for i, e := range evs {
		if e.Type != run.ArtifactsStored {
			continue
		}
		stored++
		// Appended together: the next event is the stage's result, at the same instant.
		if i+1 >= len(evs) || evs[i+1].Type != run.StageFinished || evs[i+1].Stage != e.Stage ||
			evs[i+1].Status != run.StatusSucceeded || !evs[i+1].Time.Equal(e.Time) {
			t.Errorf("ArtifactsStored of %s at seq %d is not followed by its StageFinished", e.Stage, e.Seq)
		}
		if e.Stage == "flaky" && e.Attempt != 2 {
			t.Errorf("flaky's attempt 1 failed, yet stored artifacts: %+v", e)
		}
	}
	if stored != 2 {
		t.Errorf("%d ArtifactsStored events, want 2 (build, flaky attempt 2)", stored)
	}

	// Downstream stages get the artifacts of all upstream stages, in stage order; the
	// upstream stages themselves get none.
	want := append(toExec(t, wantBuild), toExec(t, wantFlaky)...)
	for _, job := range h.exec.Jobs() {
		switch job.Stage {
		case "test", "deploy":
			if !slices.Equal(job.ArtifactsIn, want) {
				t.Errorf("%s got %+v, want %+v", job.Stage, job.ArtifactsIn, want)
			}
		default:
			if job.ArtifactsIn != nil {
				t.Errorf("%s got %+v", job.Stage, job.ArtifactsIn)
			}
		}
	}
}

// TestArtifactMissingFailsStage: a glob that matches nothing fails the stage, naming it,
// records no artifacts, and skips what is downstream.
func TestArtifactMissingFailsStage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ":memory:", nil)
	p := stages(
		[3]string{"build", "", "artifact out/app binary"},
		[3]string{"test", "build", "echo never"},
	)
	p.Stages[0].Artifacts = []string{"out/app", "dist/*.tgz"}
	id := h.create(p)
	st := h.wait(id)
	b := st.Stage("build")
	if st.Phase != run.Failed || b.Status != run.StatusFailed || !strings.Contains(b.Reason, `"dist/*.tgz"`) ||
		!strings.Contains(b.Reason, execute.ErrArtifactMissing.Error()) {
		t.Fatalf("phase %s, build %s: %s", st.Phase, b.Status, b.Reason)
	}
	if b.Artifacts != nil || st.Stage("test").Status != run.StatusSkipped {
		t.Fatalf("artifacts %+v, test %s", b.Artifacts, st.Stage("test").Status)
	}
	for _, e := range h.events(id) {
		if e.Type == run.ArtifactsStored {
			t.Fatalf("ArtifactsStored for a failed stage: %+v", e)
		}
	}
}

// TestArtifactRecordRoundTrip: an artifact survives the event's form unchanged, and a
// malformed record fails the downstream stage instead of being materialised wrongly.
func TestArtifactRecordRoundTrip(t *testing.T) {
	t.Parallel()
	in := []execute.Artifact{
		{Path: "bin/app", Digest: digestOf("x"), Size: 1, Mode: 0o755},
		{Path: "current", Mode: fs.ModeSymlink | fs.ModePerm, Link: "bin/app"},
		{Path: "logs", Mode: fs.ModeDir | 0o755},
	}
	got := runArtifacts(in)
	if got[0].Type != run.ArtifactFile || got[0].Mode != "0755" || got[1].Type != run.ArtifactSymlink || got[1].Mode != "" ||
		got[2].Type != run.ArtifactDir || got[2].Mode != "0755" {
		t.Fatalf("recorded %+v", got)
	}
	if back := toExec(t, got); !slices.Equal(back, in) {
		t.Fatalf("back %+v, want %+v", back, in)
	}
	for _, bad := range []run.Artifact{{Path: "a", Type: "fifo"}, {Path: "a", Type: run.ArtifactFile, Mode: "rwx"}, {Path: "a", Type: run.ArtifactFile, Mode: "01777"}} {
		if _, err := execArtifact(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func toExec(t *testing.T, in []run.Artifact) []execute.Artifact {
	t.Helper()
	var out []execute.Artifact
	for _, a := range in {
		ea, err := execArtifact(a)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ea)
	}
	return out
}
