package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// testRunProjection: the run row follows the summaries written with the appends.
func testRunProjection(t *testing.T, h Harness) {
	s := h.Open(t)
	sum := createRun(t, s, summary("run-1", at(0)))
	check := func(when string) {
		t.Helper()
		got, err := s.RunGet(t.Context(), "run-1")
		if err != nil {
			t.Fatalf("%s: RunGet: %v", when, err)
		}
		if d := diffSummary(got, sum); d != "" {
			t.Errorf("%s: %s", when, d)
		}
	}
	check("after RunCreated")

	sum.Phase = run.Building
	appendNext(t, s, &sum, stageEvent(run.StageQueued), stageEvent(run.StageStarted))
	check("after the stage started")

	sum.Phase = run.Testing
	appendNext(t, s, &sum, stageEvent(run.StageFinished))
	check("after the stage finished")

	if got := unfinished(t, s); !slices.Equal(got, []string{"run-1"}) {
		t.Errorf("unfinished runs = %v, want [run-1]", got)
	}

	sum.Phase, sum.FinishedAt = run.Succeeded, at(90*time.Minute).In(time.FixedZone("UTC-7", -7*3600))
	appendNext(t, s, &sum, run.Event{Type: run.RunFinished, Status: string(run.Succeeded), Time: sum.FinishedAt})
	check("after RunFinished")

	if got := unfinished(t, s); len(got) != 0 {
		t.Errorf("unfinished runs after RunFinished = %v, want none", got)
	}
}

func unfinished(t *testing.T, s Store) []string {
	t.Helper()
	runs, err := s.RunList(t.Context(), store.RunListParams{Unfinished: true})
	if err != nil {
		t.Fatal(err)
	}
	return ids(runs)
}

func testRunGetNotFound(t *testing.T, h Harness) {
	s := h.Open(t)
	createRun(t, s, summary("run-1", at(0)))
	if got, err := s.RunGet(t.Context(), "run-2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RunGet(unknown) = %+v, %v; want ErrNotFound", got, err)
	}
}

// testRunList: filters combine, the order is newest first with ties broken by id, and
// Limit cuts the newest.
func testRunList(t *testing.T, h Harness) {
	s := h.Open(t)
	type r struct {
		id, repo, team string
		phase          run.Phase
		created        time.Time
	}
	for _, c := range []r{
		{"r1", "a/x", "t1", run.Succeeded, at(1 * time.Minute)},
		// Another location: the order is by instant, whatever the location.
		{"r2", "a/x", "t2", run.Building, at(2 * time.Minute).In(time.FixedZone("UTC+5", 5*3600))},
		{"r3", "a/y", "t1", run.Failed, at(3 * time.Minute)},
		{"r4", "a/y", "t1", run.Pending, at(3 * time.Minute)}, // same time as r3: id decides
		{"r5", "a/x", "t1", run.Cancelled, at(4 * time.Minute)},
		{"r6", "b/z", "t2", run.Testing, at(5 * time.Minute)},
		{"r7", "b/z", "t2", run.RolledBack, at(6 * time.Minute)},
		{"r8", "b/z", "t1", run.Deploying, at(6*time.Minute + 1)}, // a nanosecond later
	} {
		sum := summary(c.id, c.created)
		sum.Repo, sum.Team = c.repo, c.team
		sum = createRun(t, s, sum)
		if c.phase != run.Pending {
			sum.Phase = c.phase
			if c.phase.Done() {
				sum.FinishedAt = c.created.Add(time.Minute)
			}
			appendNext(t, s, &sum, stageEvent(run.StageQueued))
		}
	}
	for _, c := range []struct {
		p    store.RunListParams
		want []string
	}{
		{store.RunListParams{}, []string{"r8", "r7", "r6", "r5", "r4", "r3", "r2", "r1"}},
		{store.RunListParams{Repo: "a/x"}, []string{"r5", "r2", "r1"}},
		{store.RunListParams{Team: "t1"}, []string{"r8", "r5", "r4", "r3", "r1"}},
		{store.RunListParams{Phase: run.Failed}, []string{"r3"}},
		{store.RunListParams{Unfinished: true}, []string{"r8", "r6", "r4", "r2"}},
		{store.RunListParams{Repo: "a/y", Unfinished: true}, []string{"r4"}},
		{store.RunListParams{Repo: "a/x", Team: "t1"}, []string{"r5", "r1"}},
		{store.RunListParams{Team: "t2", Phase: run.Testing, Unfinished: true}, []string{"r6"}},
		{store.RunListParams{Phase: run.Succeeded, Unfinished: true}, nil},
		{store.RunListParams{Limit: 3}, []string{"r8", "r7", "r6"}},
		{store.RunListParams{Team: "t1", Limit: 2}, []string{"r8", "r5"}},
		{store.RunListParams{Repo: "nobody/nothing"}, nil},
	} {
		runs, err := s.RunList(t.Context(), c.p)
		if err != nil {
			t.Fatalf("RunList(%+v): %v", c.p, err)
		}
		if got := ids(runs); !slices.Equal(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Errorf("RunList(%+v) = %v, want %v", c.p, got, c.want)
		}
	}
	// The rows are whole summaries, not just ids.
	runs, err := s.RunList(t.Context(), store.RunListParams{Repo: "a/x", Team: "t2"})
	if err != nil || len(runs) != 1 {
		t.Fatalf("RunList(a/x, t2) = %v, %v; want r2", ids(runs), err)
	}
	want := summary("r2", at(2*time.Minute))
	want.Repo, want.Team, want.Phase, want.LastSeq = "a/x", "t2", run.Building, 2
	if d := diffSummary(runs[0], want); d != "" {
		t.Error(d)
	}
}

// testRunListDefaultLimit: Limit 0 means 100.
func testRunListDefaultLimit(t *testing.T, h Harness) {
	s := h.Open(t)
	for i := range 105 {
		createRun(t, s, summary(fmt.Sprintf("run-%03d", i), at(time.Duration(i)*time.Second)))
	}
	runs, err := s.RunList(t.Context(), store.RunListParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 100 || runs[0].ID != "run-104" || runs[99].ID != "run-005" {
		t.Errorf("RunList() = %d runs from %v; want the newest 100, run-104 to run-005", len(runs), ids(runs[:min(len(runs), 3)]))
	}
	if runs, err := s.RunList(t.Context(), store.RunListParams{Limit: 1000}); err != nil || len(runs) != 105 {
		t.Errorf("RunList(limit 1000) = %d runs, %v; want 105", len(runs), err)
	}
}

// testNegativeLimit: a negative limit is the caller's mistake, not "no limit".
func testNegativeLimit(t *testing.T, h Harness) {
	s := h.Open(t)
	createRun(t, s, summary("run-1", at(0)))
	if _, err := s.EventList(t.Context(), store.EventListParams{RunID: "run-1", Limit: -1}); err == nil {
		t.Error("EventList(limit -1) succeeded")
	}
	if _, err := s.RunList(t.Context(), store.RunListParams{Limit: -1}); err == nil {
		t.Error("RunList(limit -1) succeeded")
	}
	if _, err := s.LogList(t.Context(), store.LogListParams{RunID: "run-1", Stage: "build", Limit: -1}); err == nil {
		t.Error("LogList(limit -1) succeeded")
	}
}
