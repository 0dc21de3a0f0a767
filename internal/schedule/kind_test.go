package schedule

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
)

// checkKind is a built-in kind for tests: it blocks when With["block"] is set, and records a
// gate decision either way.
type checkKind struct{ jobs chan KindJob }

func (k checkKind) Run(ctx context.Context, job KindJob, rec KindRecorder) (KindResult, error) {
	k.jobs <- job
	rec.Log("checking " + job.Info.SHA + " with " + job.Env["TOKEN"])
	decision := "pass"
	if len(job.Def.With["block"]) > 0 {
		decision = "block"
	}
	if err := rec.Event(run.Event{Type: run.GateEvaluated, Gate: &run.Gate{Kind: job.Def.Uses, Decision: decision}}); err != nil {
		return KindResult{}, err
	}
	if decision == "block" {
		return KindResult{Failed: true, Reason: "2 findings at or above HIGH"}, nil
	}
	return KindResult{}, nil
}

func TestKindRunsInTheServerAndRecordsItsEvents(t *testing.T) {
	t.Parallel()
	k := checkKind{jobs: make(chan KindJob, 4)}
	h := newHarness(t, ":memory:", func(c *Config) {
		c.Kinds = map[string]Kind{"gate/check": k}
		c.Secrets = func(context.Context, SecretParams) (string, error) { return "s3cret-value", nil }
	})
	p := stages([3]string{"build", "", "artifact out.txt built"}, [3]string{"deploy-after", "pass,strict", "echo never"})
	p.Stages[0].Artifacts = []string{"out.txt"}
	pass := &pipeline.Stage{Name: "pass", Base: "pass", Phase: "test", Timeout: time.Minute, Needs: []string{"build"}, Uses: "gate/check",
		Env: map[string]pipeline.EnvVar{"TOKEN": {Secret: "TOKEN"}}}
	strict := &pipeline.Stage{Name: "strict", Base: "strict", Phase: "test", Timeout: time.Minute, Uses: "gate/check",
		With: map[string][]string{"block": {"true"}}}
	p.Stages = []*pipeline.Stage{p.Stages[0], pass, strict, p.Stages[1]}
	id := h.create(p)
	st := h.wait(id)
	if st.Phase != run.Failed {
		t.Fatalf("phase %s, want FAILED", st.Phase)
	}
	if s := st.Stage("pass"); s.Status != run.StatusSucceeded || s.Sandbox != "in-process" || len(s.Gates) != 1 || s.Gates[0].Decision != "pass" {
		t.Errorf("pass: %+v", s)
	}
	if s := st.Stage("strict"); s.Status != run.StatusFailed || s.Reason != "2 findings at or above HIGH" || len(s.Gates) != 1 || s.Gates[0].Decision != "block" {
		t.Errorf("strict: %+v", s)
	}
	if s := st.Stage("deploy-after"); s.Status != run.StatusSkipped {
		t.Errorf("deploy-after: %s, want skipped", s.Status)
	}
	var jobs []KindJob
	for range 2 {
		jobs = append(jobs, <-k.jobs)
	}
	i := slices.IndexFunc(jobs, func(j KindJob) bool { return j.Stage == "pass" })
	if i < 0 || len(jobs[i].ArtifactsIn) != 1 || jobs[i].ArtifactsIn[0].Path != "out.txt" || jobs[i].Env["TOKEN"] != "s3cret-value" {
		t.Errorf("the pass stage's job: %+v", jobs)
	}
	for _, e := range h.events(id) {
		if e.Type == run.GateEvaluated && (e.Stage == "" || e.Attempt != 1) {
			t.Errorf("GateEvaluated without its stage and attempt: %+v", e)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		h.mu.Lock()
		logs := slices.Clone(h.logs)
		h.mu.Unlock()
		var text []string
		for _, l := range logs {
			text = append(text, l.Text)
		}
		all := strings.Join(text, "\n")
		if strings.Contains(all, "s3cret-value") {
			t.Fatalf("a kind's log line shows the secret: %q", all)
		}
		if strings.Contains(all, "checking  with ***") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no masked log line of the kind in %q", all)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestUnknownKindFailsTheStageSayingWhatRuns(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ":memory:", func(c *Config) { c.Kinds = map[string]Kind{"gate/check": checkKind{jobs: make(chan KindJob, 1)}} })
	p := &pipeline.Pipeline{Name: "t", Stages: []*pipeline.Stage{{Name: "d", Base: "d", Phase: "deploy", Timeout: time.Minute,
		Deploy: &pipeline.Deploy{Environment: "dev", Strategy: "rolling"}}}}
	st := h.wait(h.create(p))
	if s := st.Stage("d"); s.Status != run.StatusFailed || !strings.Contains(s.Reason, `stage kind "deploy" is not available in this server (it runs: gate/check)`) {
		t.Fatalf("d: %s %q", s.Status, s.Reason)
	}
}
