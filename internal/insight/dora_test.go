package insight_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/paved/paved/internal/execute/fake"
	"github.com/paved/paved/internal/insight"
	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/schedule"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/store/sqlite"
)

func at(day, hour, minute int) time.Time {
	return time.Date(2026, 11, day, hour, minute, 0, 0, time.UTC)
}

// TestDORAKnownHistory: runs made through the real scheduler with known commit times, and
// the deployment history their deploy stages would have written, give the four keys
// computed by hand below.
func TestDORAKnownHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	sched, err := schedule.New(schedule.Config{LogFlush: time.Millisecond}, st, &fake.Executor{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sched.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sched.Stop(); st.Close() })
	newRun := func(committed time.Time) string {
		p := &pipeline.Pipeline{Name: "svc", Stages: []*pipeline.Stage{stage("build", "build", "echo ok")}}
		id, err := sched.Create(ctx, schedule.CreateParams{Info: run.Info{Repo: "a/svc", SHA: "abc", CommittedAt: committed,
			Pipeline: p, Trigger: run.Trigger{Kind: "push", Branch: "main"}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sched.Wait(ctx, id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	n := 0
	deploy := func(env, runID, rollbackOf string, started, finished time.Time, outcome, reason string) string {
		n++
		id := "d" + string(rune('a'+n))
		if err := st.DeploymentAppend(ctx, store.Deployment{ID: id, Environment: env, Strategy: "canary", RunID: runID,
			RollbackOf: rollbackOf, Outcome: store.DeploymentInProgress, StartedAt: started}); err != nil {
			t.Fatal(err)
		}
		if !finished.IsZero() {
			if err := st.DeploymentFinish(ctx, store.DeploymentFinishParams{ID: id, Outcome: outcome, Reason: reason, FinishedAt: finished}); err != nil {
				t.Fatal(err)
			}
		}
		return id
	}
	ok, failed, rolled := store.DeploymentSucceeded, store.DeploymentFailed, store.DeploymentRolledBack
	d1 := deploy("prod", newRun(at(1, 8, 0)), "", at(1, 9, 0), at(1, 10, 0), ok, "") // lead 2h
	deploy("prod", newRun(at(2, 9, 0)), "", at(2, 12, 0), at(2, 12, 30), rolled,
		"analysis failed at step 2 (50%): error rate 5% > 1%") // incident from 2nd 12:30
	deploy("prod", "", d1, at(2, 13, 0), at(2, 13, 30), ok, "")                             // manual rollback: restored after 1h
	deploy("prod", newRun(at(3, 10, 0)), "", at(3, 11, 0), at(3, 11, 10), failed, "health") // incident from 3rd 11:10
	deploy("prod", newRun(at(3, 12, 0)), "", at(3, 13, 0), at(3, 13, 5), failed, "health")  // the same incident
	deploy("prod", newRun(at(4, 8, 0)), "", at(4, 9, 0), at(4, 9, 40), ok, "")              // lead 1h40m; restored after 22h30m
	deploy("prod", newRun(at(5, 0, 0)), "", at(5, 6, 0), at(5, 7, 0), ok, "")               // lead 7h
	deploy("prod", newRun(time.Time{}), "", at(6, 10, 0), at(6, 10, 20), rolled, "verification failed: p95 latency")
	deploy("staging", newRun(at(5, 0, 0)), "", at(5, 1, 0), at(5, 2, 0), ok, "")                                  // another environment
	deploy("prod", newRun(at(30, 0, 0).AddDate(0, -1, 0)), "", at(1, 0, 0).Add(-time.Hour), at(1, 0, 30), ok, "") // before the window
	deploy("prod", newRun(at(7, 0, 0)), "", at(7, 1, 0), time.Time{}, "", "")                                     // in progress

	got, err := insight.LoadDORA(ctx, st, st, "prod", at(1, 0, 0), at(8, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	failing := at(6, 10, 20)
	want := insight.DORA{
		Environment: "prod", Since: at(1, 0, 0), Until: at(8, 0, 0),
		Deployments: 7, Succeeded: 3, Failed: 2, RolledBack: 2,
		PerDay:            3.0 / 7,
		LeadTimeMS:        insight.Percentiles{Count: 3, P50: 7_200_000, P95: 25_200_000, P99: 25_200_000, Max: 25_200_000},
		ChangeFailureRate: 4.0 / 7,
		RestoreMS:         insight.Percentiles{Count: 2, P50: 3_600_000, P95: 81_000_000, P99: 81_000_000, Max: 81_000_000},
		FailingSince:      &failing,
		Rollbacks:         3,
		RollbacksByReason: map[string]int{"analysis failed": 1, "manual": 1, "verification failed": 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("dora\n got %+v\nwant %+v", got, want)
	}

	empty := insight.ComputeDORA("prod", nil, nil, at(1, 0, 0), at(8, 0, 0))
	if empty.Deployments != 0 || empty.ChangeFailureRate != 0 || empty.PerDay != 0 || empty.FailingSince != nil {
		t.Errorf("no deployments: %+v", empty)
	}
}

// TestCostKnownHistory: CPU time the executor reported per stage attempt is summed per run,
// pipeline and team, retries included, and priced per CPU-hour.
func TestCostKnownHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	sched, err := schedule.New(schedule.Config{LogFlush: time.Millisecond}, st, &fake.Executor{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sched.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sched.Stop(); st.Close() })
	mk := func(team, pipe string, stages ...*pipeline.Stage) {
		p := &pipeline.Pipeline{Name: pipe, Stages: stages}
		id, err := sched.Create(ctx, schedule.CreateParams{Info: run.Info{Repo: "a/" + pipe, Team: team, Pipeline: p,
			Trigger: run.Trigger{Kind: "push", Branch: "main"}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sched.Wait(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	flaky := stage("test", "test", "use 30m 2000\nattempt 1 exit 1")
	flaky.Retries = 1
	// api (team a): build 1h (RSS 1000) + test 30m twice = 2h, max RSS 2000.
	mk("a", "api", stage("build", "build", "use 1h 1000"), flaky)
	// web (team b): 6m + 3m in two steps = 9m.
	web := stage("build", "build", "use 6m 500")
	web.Steps = append(web.Steps, pipeline.Step{Name: "s2", Run: "use 3m 700"})
	mk("b", "web", web)

	c, err := insight.LoadCost(ctx, st, insight.Filter{Since: time.Now().Add(-time.Hour)}, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	// 2h + 9m = 7740 s; 7740/3600 × 0.05 = 0.1075.
	if c.Total.Runs != 2 || c.Total.CPUSeconds != 7740 || c.Total.Cost != 0.1075 || c.Total.MaxRSS != 2000 {
		t.Errorf("total %+v", c.Total)
	}
	if len(c.Teams) != 2 || c.Teams[0].Team != "a" || c.Teams[0].CPUSeconds != 7200 || c.Teams[0].Cost != 0.1 ||
		c.Teams[1].Team != "b" || c.Teams[1].CPUSeconds != 540 || c.Teams[1].Cost != 0.0075 || c.Teams[1].MaxRSS != 700 {
		t.Errorf("teams %+v", c.Teams)
	}
	if len(c.Pipelines) != 2 || c.Pipelines[0].Pipeline != "api" || c.Pipelines[0].Repo != "a/api" {
		t.Errorf("pipelines %+v", c.Pipelines)
	}
	var api insight.RunCost
	for _, r := range c.Runs {
		if r.Pipeline == "api" {
			api = r
		}
	}
	want := []insight.StageCost{{Stage: "build", Attempts: 1, CPUSeconds: 3600, MaxRSS: 1000}, {Stage: "test", Attempts: 2, CPUSeconds: 3600, MaxRSS: 2000}}
	for i := range api.Stages {
		// The fake's stages take no wall time to speak of: memory-seconds are checked on
		// a history with known times (TestMemoryGBSeconds).
		api.Stages[i].MemoryGBSeconds = 0
	}
	if !reflect.DeepEqual(api.Stages, want) || api.Cost != 0.1 {
		t.Errorf("api run %+v", api)
	}
}
