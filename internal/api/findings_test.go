package api_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/paved/paved/internal/api"
	"github.com/paved/paved/internal/execute/fake"
	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/schedule"
	"github.com/paved/paved/internal/store/sqlite"
	"github.com/paved/paved/internal/trigger"
)

// scripted is a gate kind that reports the findings it was made with.
type scripted struct{ g run.Gate }

func (k scripted) Run(_ context.Context, job schedule.KindJob, rec schedule.KindRecorder) (schedule.KindResult, error) {
	g := k.g
	if err := rec.Event(run.Event{Type: run.GateEvaluated, Gate: &g}); err != nil {
		return schedule.KindResult{}, err
	}
	return schedule.KindResult{Failed: g.Decision == "block", Reason: g.Reason}, nil
}

func TestFindingsOfARun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "paved.db"))
	if err != nil {
		t.Fatal(err)
	}
	hub := api.NewHub()
	kinds := map[string]schedule.Kind{
		"gate/a": scripted{run.Gate{Kind: "gate/a", Decision: "warn", Reason: "1 finding at or above HIGH warn in dev: x",
			Findings: []run.Finding{{Rule: "x", Severity: "HIGH", File: "f.go", Line: 3}, {Rule: "y", Severity: "LOW"}}}},
		"gate/b": scripted{run.Gate{Kind: "gate/b", Decision: "block", Reason: "1 finding at or above MEDIUM block production: z",
			Findings: []run.Finding{{Rule: "z", Severity: "CRITICAL", Package: "Go/m", Version: "v1"}}}},
	}
	sched, err := schedule.New(schedule.Config{Kinds: kinds, OnEvent: hub.PublishEvent, OnLog: hub.PublishLogs}, st, &fake.Executor{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sched.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Access: newAccess(t, st), Store: st, Scheduler: sched, Git: &trigger.Git{Dir: t.TempDir()}, Hub: hub,
		Compile: pipeline.Options{Kinds: []string{"gate/a", "gate/b"}}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); sched.Stop(); st.Close() })
	e := &env{t: t, url: hs.URL}
	e.repo("acme/gates", "stages:\n  a: {uses: gate/a}\n  b: {uses: gate/b}\n")
	var created struct{ ID string }
	e.do("POST", "/api/v1/runs", map[string]string{"repo": "acme/gates", "ref": "main"}, 201, &created)
	e.waitDone(created.ID)

	type view struct {
		Decision string
		Counts   map[string]int
		Gates    []struct {
			Stage, Status, Decision string
			Findings                []run.Finding
		}
	}
	var all view
	e.do("GET", "/api/v1/runs/"+created.ID+"/findings", nil, 200, &all)
	if all.Decision != "block" || len(all.Gates) != 2 || all.Counts["HIGH"] != 1 || all.Counts["CRITICAL"] != 1 || all.Counts["LOW"] != 1 {
		t.Errorf("all: %+v", all)
	}
	var high view
	e.do("GET", "/api/v1/runs/"+created.ID+"/findings?stage=a&severity=high", nil, 200, &high)
	if high.Decision != "warn" || len(high.Gates) != 1 || high.Gates[0].Status != run.StatusSucceeded ||
		len(high.Gates[0].Findings) != 1 || high.Gates[0].Findings[0].Rule != "x" {
		t.Errorf("?stage=a&severity=high: %+v", high)
	}
	var none view
	e.do("GET", "/api/v1/runs/"+created.ID+"/findings?kind=gate/c", nil, 200, &none)
	if none.Decision != "" || len(none.Gates) != 0 {
		t.Errorf("?kind=gate/c: %+v", none)
	}
	e.do("GET", "/api/v1/runs/"+created.ID+"/findings?severity=severe", nil, 400, nil)
	e.do("GET", "/api/v1/runs/nope/findings", nil, 404, nil)
}
