package insight

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// TestHistory reads the test outcomes of stages from the event log (their TestsReported
// events) and judges which tests are flaky. It keeps no state: the log is the history, so a
// restart or a second server sees the same quarantine.
type TestHistory struct {
	Store RunStore
	Flaky FlakyConfig
	// Now defaults to time.Now; tests move it to let a window pass.
	Now func() time.Time
}

func (h *TestHistory) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// Outcomes lists the test outcomes of a repository's pipeline's stage (empty filters: all)
// recorded at or after since, by run oldest first. It reads at most MaxRuns runs, the newest.
func (h *TestHistory) Outcomes(ctx context.Context, repo, pipeline, stage string, since time.Time) ([]TestOutcome, error) {
	return h.outcomes(ctx, repo, pipeline, stage, since, nil)
}

// outcomes is Outcomes of only the tests named in only (nil: all).
func (h *TestHistory) outcomes(ctx context.Context, repo, pipeline, stage string, since time.Time, only map[string]bool) ([]TestOutcome, error) {
	sums, err := h.Store.RunList(ctx, store.RunListParams{Repo: repo, Limit: MaxRuns})
	if err != nil {
		return nil, err
	}
	var out []TestOutcome
	// Oldest run first, its events in order: the outcomes come out (nearly) in time order
	// without sorting hundreds of thousands of them.
	slices.Reverse(sums)
	for _, sum := range sums {
		if (pipeline != "" && sum.Pipeline != pipeline) || (!sum.FinishedAt.IsZero() && sum.FinishedAt.Before(since)) {
			continue
		}
		evs, err := h.Store.EventList(ctx, store.EventListParams{RunID: sum.ID})
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			if e.Type != run.TestsReported || e.Tests == nil || (stage != "" && e.Stage != stage) || e.Time.Before(since) {
				continue
			}
			for _, c := range e.Tests.Cases {
				if only != nil && !only[c.ID] {
					continue
				}
				out = append(out, TestOutcome{Repo: sum.Repo, Pipeline: sum.Pipeline, Stage: e.Stage, Test: c.ID,
					SHA: sum.SHA, RunID: sum.ID, Status: c.Status, DurationMS: c.DurationMS, At: e.Time})
			}
		}
	}
	return out, nil
}

// Quarantined returns the flaky tests of a run's stage now, with why each is; the current
// attempt's outcomes count as of now (schedule.Quarantine). With current, only its failed
// tests are judged: they are all the scheduler asks about, and a stage's history holds
// every test of every run.
func (h *TestHistory) Quarantined(ctx context.Context, info *run.Info, stage string, current *run.Tests) (map[string]string, error) {
	now := h.now()
	cfg := h.Flaky.withDefaults()
	var only map[string]bool
	if current != nil {
		only = map[string]bool{}
		for _, id := range current.FailedIDs() {
			only[id] = true
		}
	}
	// DetectFlaky judges a failure at the window's start on the window before it.
	outs, err := h.outcomes(ctx, info.Repo, info.Pipeline.Name, stage, now.Add(-2*cfg.Window), only)
	if err != nil {
		return nil, err
	}
	if current != nil {
		for _, c := range current.Cases {
			if !only[c.ID] {
				continue
			}
			outs = append(outs, TestOutcome{Repo: info.Repo, Pipeline: info.Pipeline.Name, Stage: stage, Test: c.ID,
				SHA: info.SHA, Status: c.Status, DurationMS: c.DurationMS, At: now})
		}
	}
	q := map[string]string{}
	for _, f := range DetectFlaky(outs, now, cfg) {
		q[f.Test] = f.Reason
	}
	return q, nil
}

// TestSummary is one test's history in a window.
type TestSummary struct {
	Repo       string    `json:"repo"`
	Pipeline   string    `json:"pipeline"`
	Stage      string    `json:"stage"`
	Test       string    `json:"test"`
	Runs       int       `json:"runs"`
	Passed     int       `json:"passed"`
	Failed     int       `json:"failed"` // failed or errored
	Skipped    int       `json:"skipped"`
	MeanMS     int64     `json:"mean_ms"`
	LastStatus string    `json:"last_status"`
	LastRun    time.Time `json:"last_run"`
	// Quarantined is set while the test is flaky (see Flaky).
	Quarantined bool `json:"quarantined"`
}

// TestsReport answers GET /api/v1/insights/tests.
type TestsReport struct {
	Tests []TestSummary `json:"tests"`
	Flaky []Flaky       `json:"flaky"`
}

// Tests summarises each test's history over the flaky window and lists the flaky ones.
// Tests are sorted with the most failures first.
func (h *TestHistory) Tests(ctx context.Context, repo, pipeline, stage string) (TestsReport, error) {
	now := h.now()
	cfg := h.Flaky.withDefaults()
	outs, err := h.Outcomes(ctx, repo, pipeline, stage, now.Add(-2*cfg.Window))
	if err != nil {
		return TestsReport{}, err
	}
	rep := TestsReport{Tests: []TestSummary{}, Flaky: DetectFlaky(outs, now, cfg)}
	if rep.Flaky == nil {
		rep.Flaky = []Flaky{}
	}
	type key struct{ repo, pipeline, stage, test string }
	flaky := map[key]bool{}
	for _, f := range rep.Flaky {
		flaky[key{f.Repo, f.Pipeline, f.Stage, f.Test}] = true
	}
	idx := map[key]int{}
	sums := map[key]int64{}
	for _, o := range outs {
		if o.At.Before(now.Add(-cfg.Window)) || o.At.After(now) {
			continue
		}
		k := key{o.Repo, o.Pipeline, o.Stage, o.Test}
		i, ok := idx[k]
		if !ok {
			i = len(rep.Tests)
			idx[k] = i
			rep.Tests = append(rep.Tests, TestSummary{Repo: o.Repo, Pipeline: o.Pipeline, Stage: o.Stage, Test: o.Test, Quarantined: flaky[k]})
		}
		s := &rep.Tests[i]
		s.Runs++
		switch {
		case o.failed():
			s.Failed++
		case o.Status == "skipped":
			s.Skipped++
		default:
			s.Passed++
		}
		sums[k] += o.DurationMS
		s.MeanMS = sums[k] / int64(s.Runs)
		s.LastStatus, s.LastRun = o.Status, o.At
	}
	slices.SortFunc(rep.Tests, func(a, b TestSummary) int {
		return cmp.Or(cmp.Compare(b.Failed, a.Failed), cmp.Compare(a.Repo, b.Repo), cmp.Compare(a.Pipeline, b.Pipeline),
			cmp.Compare(a.Stage, b.Stage), cmp.Compare(a.Test, b.Test))
	})
	return rep, nil
}
