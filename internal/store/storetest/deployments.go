package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/paved/paved/internal/store"
)

// DeploymentStore is the deployment history every store keeps (internal/deploy reads and
// writes it; the API lists it).
type DeploymentStore interface {
	DeploymentAppend(ctx context.Context, d store.Deployment) error
	DeploymentFinish(ctx context.Context, p store.DeploymentFinishParams) error
	DeploymentGet(ctx context.Context, id string) (store.Deployment, error)
	DeploymentList(ctx context.Context, p store.DeploymentListParams) ([]store.Deployment, error)
}

var deployT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func deployment(id, env string, at time.Time) store.Deployment {
	return store.Deployment{
		ID: id, Environment: env, Strategy: "canary", Artifact: "sha256:" + fmt.Sprintf("%064d", 7), Version: "000000000007",
		Config: json.RawMessage(`{"replicas":3}`), ConfigHash: "h", RunID: "run-1", Stage: "deploy", Repo: "acme/app",
		SHA: "abc", TriggeredBy: "push by ana", Outcome: store.DeploymentInProgress, StartedAt: at,
	}
}

func testDeploymentRoundTrip(t *testing.T, h Harness) {
	s, ctx := h.Open(t), t.Context()
	d := deployment("d1", "prod", deployT0)
	if err := s.DeploymentAppend(ctx, d); err != nil {
		t.Fatal(err)
	}
	got, err := s.DeploymentGet(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Config) != string(d.Config) || got.Artifact != d.Artifact || !got.StartedAt.Equal(d.StartedAt) || got.TriggeredBy != d.TriggeredBy {
		t.Errorf("got %+v, want %+v", got, d)
	}
	if err := s.DeploymentAppend(ctx, d); !errors.Is(err, store.ErrConflict) {
		t.Errorf("append of a known id: %v, want ErrConflict", err)
	}
	if _, err := s.DeploymentGet(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("get unknown: %v, want ErrNotFound", err)
	}
	if err := s.DeploymentAppend(ctx, store.Deployment{ID: "x"}); err == nil {
		t.Error("append without environment: no error")
	}
}

func testDeploymentFinish(t *testing.T, h Harness) {
	s, ctx := h.Open(t), t.Context()
	if err := s.DeploymentAppend(ctx, deployment("d1", "prod", deployT0)); err != nil {
		t.Fatal(err)
	}
	end := deployT0.Add(time.Minute)
	p := store.DeploymentFinishParams{ID: "d1", Outcome: store.DeploymentRolledBack, Reason: "error_rate 0.2 > 0.001", FinishedAt: end}
	if err := s.DeploymentFinish(ctx, p); err != nil {
		t.Fatal(err)
	}
	got, _ := s.DeploymentGet(ctx, "d1")
	if got.Outcome != store.DeploymentRolledBack || got.Reason != p.Reason || !got.FinishedAt.Equal(end) {
		t.Errorf("after finish: %+v", got)
	}
	if err := s.DeploymentFinish(ctx, p); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second finish: %v, want ErrConflict", err)
	}
	p.ID = "nope"
	if err := s.DeploymentFinish(ctx, p); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("finish unknown: %v, want ErrNotFound", err)
	}
	if err := s.DeploymentFinish(ctx, store.DeploymentFinishParams{ID: "d1", Outcome: store.DeploymentInProgress, FinishedAt: end}); err == nil {
		t.Error("finish as in_progress: no error")
	}
}

func testDeploymentList(t *testing.T, h Harness) {
	s, ctx := h.Open(t), t.Context()
	for i, env := range []string{"dev", "prod", "prod", "prod"} {
		if err := s.DeploymentAppend(ctx, deployment(fmt.Sprintf("d%d", i), env, deployT0.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeploymentFinish(ctx, store.DeploymentFinishParams{ID: "d2", Outcome: store.DeploymentSucceeded, FinishedAt: deployT0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	ids := func(p store.DeploymentListParams) []string {
		t.Helper()
		ds, err := s.DeploymentList(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		out := []string{}
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}
	for _, c := range []struct {
		p    store.DeploymentListParams
		want string
	}{
		{store.DeploymentListParams{}, "[d3 d2 d1 d0]"},
		{store.DeploymentListParams{Environment: "prod"}, "[d3 d2 d1]"},
		{store.DeploymentListParams{Environment: "prod", Outcome: store.DeploymentSucceeded}, "[d2]"},
		{store.DeploymentListParams{Environment: "prod", Limit: 1}, "[d3]"},
		{store.DeploymentListParams{Environment: "qa"}, "[]"},
	} {
		if got := fmt.Sprint(ids(c.p)); got != c.want {
			t.Errorf("list %+v = %s, want %s", c.p, got, c.want)
		}
	}
	if _, err := s.DeploymentList(ctx, store.DeploymentListParams{Limit: -1}); err == nil {
		t.Error("negative limit: no error")
	}
}

// testDeploymentFinishRace: two servers finishing one deployment: exactly one wins.
func testDeploymentFinishRace(t *testing.T, h Harness) {
	s, ctx := h.Open(t), t.Context()
	if err := s.DeploymentAppend(ctx, deployment("d1", "prod", deployT0)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			errs[i] = s.DeploymentFinish(ctx, store.DeploymentFinishParams{ID: "d1", Outcome: store.DeploymentSucceeded, FinishedAt: deployT0.Add(time.Minute)})
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("finish: %v", err)
		}
	}
	if won != 1 {
		t.Errorf("%d finishes succeeded, want 1", won)
	}
}

func testDeploymentReopen(t *testing.T, h Harness) {
	if h.Reopen == nil {
		t.Skip("the store does not outlive Close")
	}
	s, ctx := h.Open(t), t.Context()
	if err := s.DeploymentAppend(ctx, deployment("d1", "prod", deployT0)); err != nil {
		t.Fatal(err)
	}
	s = h.Reopen(t, s)
	if d, err := s.DeploymentGet(ctx, "d1"); err != nil || d.Environment != "prod" {
		t.Errorf("after reopen: %+v, %v", d, err)
	}
}
