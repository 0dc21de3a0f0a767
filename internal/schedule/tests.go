package schedule

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/insight/junit"
	"github.com/paved/paved/internal/run"
)

// Quarantine says which tests of a stage are quarantined as flaky: still run, but their
// failures do not fail the stage. The server's is insight.TestHistory, which reads the
// stage's earlier TestsReported events from the event log.
type Quarantine interface {
	// Quarantined returns the quarantined tests of a run's stage, by test id
	// (junit.Case.ID), with why each is. Current is what the attempt deciding it reported:
	// its failure may be the very evidence (a test that passed on this commit before).
	Quarantined(ctx context.Context, info *run.Info, stage string, current *run.Tests) (map[string]string, error)
}

// maxTestCases bounds the cases one TestsReported event carries (about 60 bytes each), so a
// suite of 200,000 tests does not put a 12 MB event in the log.
const maxTestCases = 50000

func failedFirst(c run.TestCase) int {
	if c.Status == junit.Failed || c.Status == junit.Errored {
		return 0
	}
	return 1
}

// testsReported parses a stage attempt's JUnit reports into its TestsReported payload; nil
// when the stage has no reports: junit:. A report that does not parse is left out and said
// in the note and the log: test reports explain a stage's result, they never decide it.
func testsReported(job execute.Job, res execute.Result, log func(string)) *run.Tests {
	if len(job.Reports) == 0 {
		return nil
	}
	t := &run.Tests{Files: []string{}}
	var notes []string
	if res.ReportsNote != "" {
		notes = append(notes, res.ReportsNote)
	}
	for _, r := range res.Reports {
		rep, err := junit.Parse(bytes.NewReader(r.Data))
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s: %v", r.Path, err))
			continue
		}
		t.Files = append(t.Files, r.Path)
		t.Passed += rep.Passed
		t.Failed += rep.Failed
		t.Errored += rep.Errored
		t.Skipped += rep.Skipped
		for _, c := range rep.Cases {
			t.DurationMS += c.DurationMS
			t.Cases = append(t.Cases, run.TestCase{ID: c.ID(), Status: c.Status, DurationMS: c.DurationMS})
		}
	}
	t.Total = len(t.Cases)
	if len(t.Cases) > maxTestCases {
		// The counts stay whole; the history keeps the failed cases first.
		slices.SortStableFunc(t.Cases, func(a, b run.TestCase) int { return failedFirst(a) - failedFirst(b) })
		t.Cases = t.Cases[:maxTestCases]
		notes = append(notes, fmt.Sprintf("%d test cases, the history keeps %d (failed ones first)", t.Total, maxTestCases))
	}
	t.Note = strings.Join(notes, "; ")
	if t.Note != "" {
		log("paved: test reports: " + t.Note)
	}
	if len(t.Files) > 0 {
		log(fmt.Sprintf("paved: tests: %d passed, %d failed, %d errored, %d skipped (%s)",
			t.Passed, t.Failed, t.Errored, t.Skipped, strings.Join(t.Files, ", ")))
	}
	return t
}

// quarantine decides whether a stage whose step failed succeeds anyway: when its reports
// name failed tests and every one of them is quarantined. It returns the reason, or "".
// A failure with no failed test in the report (a build error) is never excused.
func (s *Scheduler) quarantine(ctx context.Context, info *run.Info, stage string, t *run.Tests, log func(string)) string {
	if s.cfg.Quarantine == nil || t == nil {
		return ""
	}
	failed := t.FailedIDs()
	if len(failed) == 0 {
		return ""
	}
	q, err := s.cfg.Quarantine.Quarantined(ctx, info, stage, t)
	if err != nil {
		log("paved: cannot read quarantined tests, the failure stands: " + err.Error())
		return ""
	}
	for _, id := range failed {
		if _, ok := q[id]; !ok {
			return ""
		}
	}
	t.Quarantined = slices.Clone(failed)
	for _, id := range failed {
		log(fmt.Sprintf("paved: test %s is quarantined (%s): its failure does not fail the stage", id, q[id]))
	}
	return "only quarantined flaky tests failed: " + strings.Join(failed, ", ")
}
