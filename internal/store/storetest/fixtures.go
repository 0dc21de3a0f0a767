package storetest

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// base is the suite's clock. It has nanoseconds so that a store that drops precision fails.
var base = time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC)

// at is base plus d.
func at(d time.Duration) time.Time { return base.Add(d) }

// testPipeline is a small compiled pipeline with every field of a stage set, so that a store
// that stores RunCreated.Info lossily fails the round trip.
func testPipeline() *pipeline.Pipeline {
	return &pipeline.Pipeline{
		Name: "payments",
		On: pipeline.Triggers{
			Push:        &pipeline.Filter{Branches: []string{"main", "release/*"}, Paths: []string{"cmd/**"}},
			PullRequest: &pipeline.Filter{Branches: []string{"main"}},
			Manual:      true,
			Cron:        []string{"0 3 * * *"},
		},
		Concurrency: &pipeline.Concurrency{Group: "$PAVED_BRANCH", CancelSuperseded: true, Limit: 2},
		Stages: []*pipeline.Stage{{
			Name:      "build[1.26]",
			Base:      "build",
			Matrix:    map[string]string{"GO": "1.26"},
			Steps:     []pipeline.Step{{Name: "compile", Run: "go build -o out/app ./cmd/app", Pos: pipeline.Pos{Line: 9, Col: 11}}},
			Env:       map[string]pipeline.EnvVar{"CGO_ENABLED": {Value: "0"}, "NPM_TOKEN": {Secret: "npm-token"}},
			Shell:     "bash",
			Timeout:   15 * time.Minute,
			Retries:   2,
			When:      &pipeline.When{Branches: []string{"main"}, Events: []string{"push"}, Paths: []string{"go.*"}},
			Artifacts: []string{"out/app"},
			Cache:     []pipeline.Cache{{KeyFiles: []string{"go.sum"}, Paths: []string{".gocache"}, RestoreKeys: []string{"go-"}}},
			Deploy:    &pipeline.Deploy{Environment: "dev", Strategy: "canary"},
			Image:     "golang:1.26",
			Reports:   &pipeline.Reports{JUnit: "report.xml", Coverage: "cover.out"},
			Phase:     "build",
			Pos:       pipeline.Pos{Line: 7, Col: 3},
		}},
	}
}

// summary is the projection of a plain run created at created.
func summary(id string, created time.Time) run.Summary {
	return run.Summary{
		ID: id, Repo: "acme/payments", Team: "payments", Ref: "refs/heads/main",
		SHA: "9fceb02d0ae598e95dc970b74767f19372d61af8", Pipeline: "payments", Trigger: "push",
		Phase: run.Pending, CreatedAt: created,
	}
}

// created is the RunCreated event of sum.
func created(sum run.Summary) run.Event {
	return run.Event{
		RunID: sum.ID, Seq: 1, Type: run.RunCreated, Time: sum.CreatedAt,
		Info: &run.Info{
			Repo: sum.Repo, Team: sum.Team, Ref: sum.Ref, SHA: sum.SHA,
			Trigger:  run.Trigger{Kind: sum.Trigger, Branch: "main"},
			Pipeline: testPipeline(), File: ".paved.yml",
		},
	}
}

// appendNext appends evs after sum.LastSeq, numbering them and naming the run, and
// advances sum. The caller sets what the events change in sum (phase, finished_at) first.
func appendNext(t *testing.T, s Store, sum *run.Summary, evs ...run.Event) {
	t.Helper()
	p := nextParams(sum, evs...)
	if err := s.EventAppend(t.Context(), p); err != nil {
		t.Fatalf("EventAppend(run %s, expected seq %d): %v", p.RunID, p.ExpectedSeq, err)
	}
	*sum = p.Summary
}

// nextParams are the params to append evs after sum.LastSeq.
func nextParams(sum *run.Summary, evs ...run.Event) store.EventAppendParams {
	p := store.EventAppendParams{RunID: sum.ID, ExpectedSeq: sum.LastSeq, Summary: *sum}
	for i, e := range evs {
		e.RunID = sum.ID
		e.Seq = sum.LastSeq + int64(i) + 1
		if e.Time.IsZero() {
			e.Time = sum.CreatedAt.Add(time.Duration(e.Seq) * time.Second)
		}
		p.Events = append(p.Events, e)
	}
	p.Summary.LastSeq = sum.LastSeq + int64(len(evs))
	return p
}

// createRun stores a new run with its RunCreated event and returns its summary.
func createRun(t *testing.T, s Store, sum run.Summary) run.Summary {
	t.Helper()
	sum.LastSeq = 0
	ev := created(sum)
	appendNext(t, s, &sum, ev)
	return sum
}

// stageEvent is an event of stage "build[1.26]" (the test pipeline's only stage).
func stageEvent(typ run.Type) run.Event {
	return run.Event{Type: typ, Stage: "build[1.26]", Attempt: 1}
}

func listEvents(t *testing.T, s Store, p store.EventListParams) []run.Event {
	t.Helper()
	evs, err := s.EventList(t.Context(), p)
	if err != nil {
		t.Fatalf("EventList(%+v): %v", p, err)
	}
	return evs
}

// seqs are the seq numbers of evs.
func seqs(evs []run.Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

// seqRange is from, from+1, ..., to.
func seqRange(from, to int64) []int64 {
	out := []int64{}
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// diffEvents says how got differs from want, or "". Times are compared as instants: a store
// may return them in another location.
func diffEvents(got, want []run.Event) string {
	if len(got) != len(want) {
		return fmt.Sprintf("got %d events %v, want %d %v", len(got), seqs(got), len(want), seqs(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.Time.Equal(w.Time) {
			return fmt.Sprintf("event %d: time %v, want %v", w.Seq, g.Time, w.Time)
		}
		g.Time, w.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, w) {
			return fmt.Sprintf("event %d:\n got %s\nwant %s", w.Seq, dump(g), dump(w))
		}
	}
	return ""
}

// diffSummary says how got differs from want, or "".
func diffSummary(got, want run.Summary) string {
	if !got.CreatedAt.Equal(want.CreatedAt) || !got.FinishedAt.Equal(want.FinishedAt) {
		return fmt.Sprintf("run %s: created %v finished %v, want created %v finished %v",
			want.ID, got.CreatedAt, got.FinishedAt, want.CreatedAt, want.FinishedAt)
	}
	got.CreatedAt, got.FinishedAt, want.CreatedAt, want.FinishedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if got != want {
		return fmt.Sprintf("run %s:\n got %+v\nwant %+v", want.ID, got, want)
	}
	return ""
}

// dump prints an event with its pointers followed.
func dump(e run.Event) string {
	s := fmt.Sprintf("%+v", e)
	if e.ExitCode != nil {
		s += fmt.Sprintf(" exit_code=%d", *e.ExitCode)
	}
	if e.Info != nil {
		s += fmt.Sprintf(" info=%+v", *e.Info)
		if e.Info.Pipeline != nil {
			s += fmt.Sprintf(" pipeline=%+v", *e.Info.Pipeline)
			for _, st := range e.Info.Pipeline.Stages {
				s += fmt.Sprintf(" stage=%+v", *st)
			}
		}
	}
	return s
}

func ids(runs []run.Summary) []string {
	out := make([]string, len(runs))
	for i, r := range runs {
		out[i] = r.ID
	}
	return out
}

func ptr[T any](v T) *T { return &v }
