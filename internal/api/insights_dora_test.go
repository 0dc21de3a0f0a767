package api_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/paved/paved/internal/api"
	"github.com/paved/paved/internal/execute/fake"
	"github.com/paved/paved/internal/schedule"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/store/sqlite"
	"github.com/paved/paved/internal/trigger"
)

func TestInsightDORA(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "paved.db"))
	if err != nil {
		t.Fatal(err)
	}
	sched, err := schedule.New(schedule.Config{}, st, &fake.Executor{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Access: newAccess(t, st), Store: st, Scheduler: sched, Git: &trigger.Git{Dir: t.TempDir()}, Hub: api.NewHub(), Deployments: st})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); st.Close() })
	e := &env{t: t, url: hs.URL}

	started := time.Now().Add(-2 * time.Hour).UTC()
	for i, outcome := range []string{store.DeploymentSucceeded, store.DeploymentRolledBack} {
		id := []string{"d1", "d2"}[i]
		if err := st.DeploymentAppend(ctx, store.Deployment{ID: id, Environment: "prod", Outcome: store.DeploymentInProgress, StartedAt: started}); err != nil {
			t.Fatal(err)
		}
		if err := st.DeploymentFinish(ctx, store.DeploymentFinishParams{ID: id, Outcome: outcome, Reason: "analysis failed at step 1 (10%): x",
			FinishedAt: started.Add(time.Duration(i+1) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	var got struct {
		Deployments       int
		ChangeFailureRate float64        `json:"change_failure_rate"`
		Rollbacks         map[string]int `json:"rollbacks_by_reason"`
	}
	e.do("GET", "/api/v1/insights/dora?environment=prod&since=24h", nil, 200, &got)
	if got.Deployments != 2 || got.ChangeFailureRate != 0.5 || got.Rollbacks["analysis failed"] != 1 {
		t.Fatalf("dora %+v", got)
	}
	e.do("GET", "/api/v1/insights/dora?environment=prod&since=1m", nil, 200, &got)
	if got.Deployments != 0 {
		t.Fatalf("outside the window: %+v", got)
	}
	e.do("GET", "/api/v1/insights/dora", nil, 400, nil)
}
