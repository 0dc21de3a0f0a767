package insight

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
)

func TestQueueWaitHistogram(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	m.StageStarted(&run.Info{Priority: "hotfix"}, "build", 3*time.Millisecond)
	m.StageStarted(&run.Info{Priority: "hotfix"}, "test", 2*time.Second)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`paved_stage_queue_wait_seconds_count{priority="hotfix",team=""} 2`,
		`paved_stage_queue_wait_seconds_bucket{priority="hotfix",team="",le="0.004"} 1`,
		"go_goroutines",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("no %q in:\n%s", want, body)
		}
	}
}

func TestEventMetrics(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	p := &pipeline.Pipeline{Name: "svc", Stages: []*pipeline.Stage{
		{Name: "test[1]", Base: "test", Phase: "test"},
		{Name: "secrets", Base: "secrets", Uses: "gate/secrets", Phase: "test"},
	}}
	one := 1
	evs := []run.Event{
		{Type: run.RunCreated, Info: &run.Info{Repo: "a/b", Pipeline: p}},
		{Type: run.StageQueued, Stage: "test[1]", Attempt: 1},
		{Type: run.StageStarted, Stage: "test[1]", Attempt: 1},
		{Type: run.TestsReported, Stage: "test[1]", Attempt: 1, Tests: &run.Tests{Total: 3, Passed: 2, Failed: 1, Quarantined: []string{"x"}}},
		{Type: run.StageFinished, Stage: "test[1]", Attempt: 1, Status: run.StatusFailed, ExitCode: &one, Time: t0.Add(1500 * time.Millisecond), CPUMS: 2500},
		{Type: run.StageQueued, Stage: "secrets", Attempt: 1},
		{Type: run.StageStarted, Stage: "secrets", Attempt: 1},
		{Type: run.GateEvaluated, Stage: "secrets", Attempt: 1, Gate: &run.Gate{Kind: "gate/secrets", Decision: "block"}},
		{Type: run.StageFinished, Stage: "secrets", Attempt: 1, Status: run.StatusFailed, Time: t0.Add(200 * time.Millisecond)},
		{Type: run.RollbackStarted, Stage: "secrets", Attempt: 1, Deployment: &run.Deployment{Environment: "prod", Strategy: "canary", RollbackMS: 0.004,
			Analysis: &run.Analysis{Metrics: []run.MetricValue{{Name: "requests", Outcome: "pass"}, {Name: "error_rate", Outcome: "fail"}}}}},
		{Type: run.DeploymentFinished, Stage: "secrets", Attempt: 1, Deployment: &run.Deployment{Environment: "prod", Strategy: "canary", Outcome: "rolled_back"}},
		{Type: run.RunFinished, Status: string(run.Failed), Time: t0.Add(2 * time.Second)},
	}
	for i, e := range evs {
		e.RunID, e.Seq = "r1", int64(i+1)
		if e.Time.IsZero() {
			e.Time = t0
		}
		m.Event(e)
	}
	m.Event(run.Event{RunID: "r2", Seq: 7, Type: run.StageStarted, Stage: "x"}) // seen mid-run: ignored
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`paved_stage_results_total{cause="test_failure",pipeline="svc",stage="test",status="failed"} 1`,
		`paved_stage_results_total{cause="gate_blocked",pipeline="svc",stage="secrets",status="failed"} 1`,
		`paved_stage_duration_seconds_sum{pipeline="svc",stage="test",status="failed"} 1.5`,
		`paved_gate_decisions_total{decision="block",gate="gate/secrets"} 1`,
		`paved_runs_finished_total{phase="FAILED",pipeline="svc"} 1`,
		`paved_stage_cpu_seconds_total{pipeline="svc",stage="test"} 2.5`,
		`paved_tests_total{pipeline="svc",stage="test",status="passed"} 2`,
		`paved_tests_total{pipeline="svc",stage="test",status="failed"} 1`,
		`paved_quarantined_failures_total{pipeline="svc",stage="test"} 1`,
		`paved_run_duration_seconds_sum{phase="FAILED",pipeline="svc"} 2`,
		`paved_deployments_total{environment="prod",outcome="rolled_back",strategy="canary"} 1`,
		`paved_rollbacks_total{environment="prod",reason="error_rate",strategy="canary"} 1`,
		`paved_rollback_seconds_count 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("no %q in:\n%s", want, body)
		}
	}
	if len(m.events.runs) != 0 {
		t.Errorf("finished runs still held: %v", m.events.runs)
	}
}

func TestLoadInboxAndHookMetrics(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	m.WatchLoad(func() Load {
		return Load{Capacity: 4, Running: 3, Queued: map[string]map[string]int{"hotfix": {"payments": 2}}, RunningByTeam: map[string]int{"payments": 3}}
	})
	m.WatchInbox(func() int { return 7 })
	m.Hook("github", 202, 3*time.Millisecond)
	m.Hook("github", 401, time.Millisecond)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		"paved_executor_capacity 4", "paved_executor_running 3",
		`paved_queue_depth{priority="hotfix",team="payments"} 2`, `paved_team_running{team="payments"} 3`,
		"paved_inbox_pending 7",
		`paved_webhook_ack_seconds_count{provider="github",status="202"} 1`,
		`paved_webhook_ack_seconds_bucket{provider="github",status="401",le="0.001"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("no %q in:\n%s", want, body)
		}
	}
}
