package schedule

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/insight"
	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
)

// clock is a settable time for the scheduler and the test history both.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// suite is a one-line JUnit report; each outcome is "name:ok" or "name:fail".
func suite(outcomes ...string) string {
	var b strings.Builder
	b.WriteString(`<testsuite name="pkg">`)
	for _, o := range outcomes {
		name, how, _ := strings.Cut(o, ":")
		fmt.Fprintf(&b, `<testcase classname="pkg" name="%s" time="0.25">`, name)
		if how == "fail" {
			b.WriteString(`<failure message="boom">boom</failure>`)
		}
		b.WriteString(`</testcase>`)
	}
	b.WriteString(`</testsuite>`)
	return b.String()
}

// testStage is a pipeline of one stage that writes report.xml with the outcomes and fails
// when one of them failed, as a test runner does.
func testStage(outcomes ...string) *pipeline.Pipeline {
	script := "artifact reports/unit.xml " + suite(outcomes...)
	if slices.ContainsFunc(outcomes, func(o string) bool { return strings.HasSuffix(o, ":fail") }) {
		script += "\nexit 1"
	}
	p := stages([3]string{"test", "", script})
	p.Stages[0].Reports = &pipeline.Reports{JUnit: "reports/*.xml"}
	return p
}

func (h *harness) createAt(p *pipeline.Pipeline, sha string) *run.State {
	h.t.Helper()
	id, err := h.sched.Create(context.Background(), CreateParams{Info: run.Info{Repo: "a/b", SHA: sha,
		Trigger: run.Trigger{Kind: "push", Branch: "main"}, Pipeline: p}})
	if err != nil {
		h.t.Fatal(err)
	}
	return h.wait(id)
}

// TestReportsRecordedWithResult: a stage's JUnit report is read also when its step failed,
// and its compacted outcomes are appended in the same append as the stage's result.
func TestReportsRecordedWithResult(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ":memory:", nil)
	st := h.createAt(testStage("TestA:ok", "TestB:fail"), "aaa")
	test := st.Stage("test")
	if test.Status != run.StatusFailed {
		t.Fatalf("stage %s: %s", test.Status, test.Reason)
	}
	want := &run.Tests{Files: []string{"reports/unit.xml"}, Total: 2, Passed: 1, Failed: 1, DurationMS: 500,
		Cases: []run.TestCase{{ID: "pkg.TestA", Status: "passed", DurationMS: 250}, {ID: "pkg.TestB", Status: "failed", DurationMS: 250}}}
	if got := fmt.Sprintf("%+v", test.Tests); got != fmt.Sprintf("%+v", want) {
		t.Errorf("tests\n got %s\nwant %s", got, fmt.Sprintf("%+v", want))
	}
	evs := h.events(st.ID)
	for i, e := range evs {
		if e.Type == run.TestsReported && (i+1 >= len(evs) || evs[i+1].Type != run.StageFinished || !evs[i+1].Time.Equal(e.Time)) {
			t.Errorf("TestsReported at seq %d is not followed by its StageFinished", e.Seq)
		}
	}
}

// TestBadReportIsALogLineNotAFailure: a report that is not JUnit leaves a note and a log
// line; the stage's result is its steps'.
func TestBadReportIsALogLineNotAFailure(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ":memory:", nil)
	p := stages([3]string{"test", "", "artifact reports/unit.xml <html>not a report</html>"})
	p.Stages[0].Reports = &pipeline.Reports{JUnit: "reports/*.xml"}
	st := h.createAt(p, "aaa")
	test := st.Stage("test")
	if test.Status != run.StatusSucceeded {
		t.Fatalf("stage %s: %s", test.Status, test.Reason)
	}
	if test.Tests == nil || !strings.Contains(test.Tests.Note, "reports/unit.xml") || test.Tests.Total != 0 {
		t.Errorf("tests %+v: want a note naming the file", test.Tests)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !slices.ContainsFunc(h.logs, func(l run.LogLine) bool { return strings.Contains(l.Text, "paved: test reports: reports/unit.xml") }) {
		t.Errorf("no log line about the bad report in %v", h.logs)
	}
}

// TestFlakyTestQuarantinedThenReleased: a test that fails and passes on one commit is
// quarantined: its next failure does not fail the stage (a failure of another test still
// does); a week with no failure releases it, and its failure fails the stage again.
func TestFlakyTestQuarantinedThenReleased(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
	var hist *insight.TestHistory
	h := newHarness(t, ":memory:", func(c *Config) {
		c.Now = clk.Now
		hist = &insight.TestHistory{Now: clk.Now}
		c.Quarantine = hist
	})
	hist.Store = h.store

	status := func(st *run.State) string { return st.Stage("test").Status }
	if st := h.createAt(testStage("TestStable:ok", "TestFlaky:fail"), "c1"); status(st) != run.StatusFailed {
		t.Fatalf("first failure, no history: %s, want failed", status(st))
	}
	clk.Add(time.Hour)
	if st := h.createAt(testStage("TestStable:ok", "TestFlaky:ok"), "c1"); status(st) != run.StatusSucceeded {
		t.Fatalf("re-run of c1: %s", status(st))
	}

	clk.Add(time.Hour)
	st := h.createAt(testStage("TestStable:ok", "TestFlaky:fail"), "c2")
	if status(st) != run.StatusSucceeded {
		t.Fatalf("flaky failure on c2: %s (%s), want succeeded as quarantined", status(st), st.Stage("test").Reason)
	}
	if r := st.Stage("test").Reason; r != "only quarantined flaky tests failed: pkg.TestFlaky" {
		t.Errorf("reason %q", r)
	}
	if q := st.Stage("test").Tests.Quarantined; !slices.Equal(q, []string{"pkg.TestFlaky"}) {
		t.Errorf("quarantined %v", q)
	}
	if st := h.createAt(testStage("TestStable:fail", "TestFlaky:fail"), "c3"); status(st) != run.StatusFailed {
		t.Errorf("a real failure beside a quarantined one: %s, want failed", status(st))
	}

	rep, err := hist.Tests(context.Background(), "a/b", "t", "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Flaky) != 1 || rep.Flaky[0].Test != "pkg.TestFlaky" {
		t.Fatalf("flaky %+v: want TestFlaky alone", rep.Flaky)
	}
	if f := rep.Flaky[0]; f.Runs != 4 || f.Failures != 3 || f.WastedMS != 750 || f.Reason != "failed and passed on commit c1" {
		t.Errorf("TestFlaky %+v: want 4 runs, 3 failures, 750ms wasted, flipped on c1", f)
	}
	if len(rep.Tests) != 2 || rep.Tests[0].Test != "pkg.TestFlaky" || !rep.Tests[0].Quarantined || rep.Tests[1].Quarantined ||
		rep.Tests[1].Runs != 4 || rep.Tests[1].Failed != 1 || rep.Tests[1].MeanMS != 250 {
		t.Errorf("tests %+v", rep.Tests)
	}

	// A clean window: eight days of passing runs later, nothing is quarantined.
	clk.Add(8 * 24 * time.Hour)
	if st := h.createAt(testStage("TestStable:ok", "TestFlaky:ok"), "c3"); status(st) != run.StatusSucceeded {
		t.Fatalf("clean run: %s", status(st))
	}
	clk.Add(time.Hour)
	if st := h.createAt(testStage("TestStable:ok", "TestFlaky:fail"), "c4"); status(st) != run.StatusFailed {
		t.Errorf("after a clean window the test is released: %s (%s), want failed", status(st), st.Stage("test").Reason)
	}
}

// TestTestsReportedBounded: past maxTestCases the event keeps the counts whole and the
// failed cases first, and says so.
func TestTestsReportedBounded(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(`<testsuite name="pkg">`)
	for i := range maxTestCases + 10 {
		fmt.Fprintf(&b, `<testcase classname="pkg" name="T%d"/>`, i)
	}
	b.WriteString(`<testcase classname="pkg" name="Last"><failure/></testcase></testsuite>`)
	var logs []string
	got := testsReported(execute.Job{Reports: []string{"r.xml"}},
		execute.Result{Reports: []execute.Report{{Path: "r.xml", Data: []byte(b.String())}}}, func(s string) { logs = append(logs, s) })
	if got.Total != maxTestCases+11 || got.Failed != 1 || len(got.Cases) != maxTestCases || got.Cases[0].ID != "pkg.Last" {
		t.Errorf("total %d failed %d cases %d first %+v", got.Total, got.Failed, len(got.Cases), got.Cases[0])
	}
	if !strings.Contains(got.Note, "the history keeps 50000") || len(logs) != 2 {
		t.Errorf("note %q logs %q", got.Note, logs)
	}
}
