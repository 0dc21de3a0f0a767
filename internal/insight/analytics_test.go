package insight_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
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

// clock is the scheduler's time: it moves only when the test says.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }
func (c *clock) set(t time.Time)     { c.mu.Lock(); c.now = t; c.mu.Unlock() }
func ms(n int) time.Duration         { return time.Duration(n) * time.Millisecond }
func stage(name, phase, script string) *pipeline.Stage {
	return &pipeline.Stage{Name: name, Base: name, Shell: "sh", Phase: phase, Timeout: time.Hour,
		Steps: []pipeline.Step{{Name: "s", Run: script}}}
}

// history runs a known history through the real scheduler (SQLite, fake executor) with a
// clock the test moves: each stage blocks at a gate until the clock has been moved by the
// duration the test chose, so every timestamp in the events is known in advance.
type history struct {
	t     *testing.T
	clock *clock
	exec  *fake.Executor
	sched *schedule.Scheduler
	store *sqlite.Store
	ids   []string
	n     int
}

func newHistory(t *testing.T) *history {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	h := &history{t: t, clock: &clock{now: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}, exec: &fake.Executor{Started: make(chan string, 8)}, store: st}
	h.sched, err = schedule.New(schedule.Config{Capacity: 1, Now: h.clock.Now, LogFlush: time.Millisecond}, st, h.exec)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.sched.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.sched.Stop(); st.Close() })
	return h
}

// step is one stage of a run in the history: how long it runs and how it ends.
type step struct {
	name, phase string
	took        int // milliseconds
	exit        int // exit code; -1 for an executor failure
}

// run makes one run of a chain of stages (each needs the one before) on branch, taking the
// durations given, and waits for it.
func (h *history) run(branch string, steps ...step) string {
	h.t.Helper()
	p := &pipeline.Pipeline{Name: "svc"}
	gates := make([]string, len(steps))
	for i, s := range steps {
		h.n++
		gates[i] = fmt.Sprintf("g%d", h.n)
		script := "gate " + gates[i]
		switch {
		case s.exit > 0:
			script += fmt.Sprintf("\nexit %d", s.exit)
		case s.exit < 0:
			script += "\ninfra the runner went away"
		}
		st := stage(s.name, s.phase, script)
		if i > 0 {
			st.Needs = []string{steps[i-1].name}
		}
		p.Stages = append(p.Stages, st)
	}
	ctx := context.Background()
	id, err := h.sched.Create(ctx, schedule.CreateParams{Info: run.Info{Repo: "a/svc", Team: "payments", Pipeline: p,
		Trigger: run.Trigger{Kind: "push", Branch: branch}}})
	if err != nil {
		h.t.Fatal(err)
	}
	for i, s := range steps {
		if got := <-h.exec.Started; got != s.name {
			h.t.Fatalf("stage %s started, want %s", got, s.name)
		}
		h.clock.add(ms(s.took))
		h.exec.Open(gates[i])
		if s.exit != 0 {
			break // the rest are skipped
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := h.sched.Wait(ctx, id); err != nil {
		h.t.Fatal(err)
	}
	h.ids = append(h.ids, id)
	h.clock.add(time.Minute) // apart from the next run
	return id
}

func (h *history) states() []*run.State {
	h.t.Helper()
	var out []*run.State
	for _, id := range h.ids {
		evs, err := h.store.EventList(context.Background(), store.EventListParams{RunID: id})
		if err != nil {
			h.t.Fatal(err)
		}
		s, err := run.Fold(evs)
		if err != nil {
			h.t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func TestAnalyzeAKnownHistory(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	// Ten runs on main: build takes 100..1000 ms, test 50 ms; runs 4 and 8 fail their
	// tests, run 10 fails to build, run 6's test has an executor failure.
	for i := 1; i <= 10; i++ {
		test := step{"test", "test", 50, 0}
		build := step{"build", "build", 100 * i, 0}
		switch i {
		case 4, 8:
			test.exit = 1
		case 6:
			test.exit = -1
		case 10:
			build.exit = 2
		}
		h.run("main", build, test)
	}
	h.run("feature/x", step{"build", "build", 5000, 0}, step{"test", "test", 50, 0})
	all := h.states()

	rep := insight.Analyze(all, insight.Filter{Branch: "main"})
	if rep.Runs.Total != 10 || rep.Runs.Finished != 10 || rep.Runs.ByPhase["SUCCEEDED"] != 6 || rep.Runs.ByPhase["FAILED"] != 4 {
		t.Errorf("runs: %+v", rep.Runs)
	}
	if rep.Runs.FailureRate != 0.4 {
		t.Errorf("run failure rate %v, want 0.4", rep.Runs.FailureRate)
	}
	// Run durations by hand: build 100·i, plus test 50 when build succeeded (runs 1-9).
	// Sorted: 150, 250, ..., 950, 1000 → p50 = 5th = 550; p95 and p99 = 10th = 1000.
	if d := rep.Runs.DurationMS; d.Count != 10 || d.P50 != 550 || d.P95 != 1000 || d.P99 != 1000 || d.Max != 1000 {
		t.Errorf("run durations %+v, want p50 550, p95 1000, p99 1000", d)
	}
	byName := map[string]insight.StageFigures{}
	for _, s := range rep.Stages {
		byName[s.Name] = s
	}
	b, tst := byName["build"], byName["test"]
	// build: 100..1000 → p50 500 (5th), p95 1000, one build error.
	if b.Runs != 10 || b.Failed != 1 || b.Causes["build_error"] != 1 || b.DurationMS.P50 != 500 || b.DurationMS.P95 != 1000 {
		t.Errorf("build figures %+v", b)
	}
	// test ran 9 times (run 10 skipped it): 2 test failures, 1 infrastructure.
	if tst.Runs != 9 || tst.Failed != 3 || tst.Causes["test_failure"] != 2 || tst.Causes["infrastructure"] != 1 || tst.DurationMS.P99 != 50 {
		t.Errorf("test figures %+v", tst)
	}
	if want := 3.0 / 9; tst.FailureRate != want {
		t.Errorf("test failure rate %v, want %v", tst.FailureRate, want)
	}
	if rep.Failures["test_failure"] != 2 || rep.Failures["build_error"] != 1 || rep.Failures["infrastructure"] != 1 || len(rep.Failures) != 3 {
		t.Errorf("failures by cause %v", rep.Failures)
	}
	// One run at a time on an idle executor: nothing waited.
	if rep.QueueWaitMS.Count != 19 || rep.QueueWaitMS.Max != 0 {
		t.Errorf("queue wait %+v", rep.QueueWaitMS)
	}

	if rep := insight.Analyze(all, insight.Filter{Stage: "build"}); len(rep.Stages) != 1 || rep.Stages[0].DurationMS.Max != 5000 || rep.Runs.Total != 11 {
		t.Errorf("stage filter: %+v", rep)
	}
	since := all[10].CreatedAt
	if rep := insight.Analyze(all, insight.Filter{Since: since}); rep.Runs.Total != 1 || rep.Runs.DurationMS.P50 != 5050 {
		t.Errorf("window from the last run: %+v", rep.Runs)
	}
}

func TestQueueWaitAndTimeoutAndCancelCauses(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	ctx := context.Background()
	// Two runs at once on one slot: the second waits for the first's 300 ms.
	mk := func(name string) string {
		p := &pipeline.Pipeline{Name: "svc", Stages: []*pipeline.Stage{stage("only", "build", "gate "+name)}}
		id, err := h.sched.Create(ctx, schedule.CreateParams{Info: run.Info{Repo: "a/svc", Pipeline: p, Trigger: run.Trigger{Kind: "push", Branch: "main"}}})
		if err != nil {
			t.Fatal(err)
		}
		h.ids = append(h.ids, id)
		return id
	}
	first := mk("first")
	<-h.exec.Started
	second := mk("second")
	h.clock.add(ms(300))
	h.exec.Open("first")
	<-h.exec.Started
	if err := h.sched.Cancel(ctx, second, "superseded by a test"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{first, second} {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if _, err := h.sched.Wait(wctx, id); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	rep := insight.Analyze(h.states(), insight.Filter{})
	if w := rep.QueueWaitMS; w.Count != 2 || w.P50 != 0 || w.Max != 300 {
		t.Errorf("queue wait %+v, want 0 and 300", w)
	}
	if rep.Failures["cancelled"] != 1 || rep.Runs.ByPhase["CANCELLED"] != 1 || rep.Runs.FailureRate != 0 {
		t.Errorf("cancel: %+v / %+v", rep.Failures, rep.Runs)
	}

	timedOut := &run.StageState{Def: stage("t", "test", "x"), Status: run.StatusFailed, Reason: "timed out after 1s"}
	gate := &run.StageState{Def: &pipeline.Stage{Name: "g", Uses: "gate/secrets", Phase: "test"}, Status: run.StatusFailed,
		Gates: []run.Gate{{Kind: "gate/secrets", Decision: "block"}}}
	deploy := &run.StageState{Def: &pipeline.Stage{Name: "d", Deploy: &pipeline.Deploy{Environment: "prod"}}, Status: run.StatusFailed}
	for st, want := range map[*run.StageState]string{timedOut: "timeout", gate: "gate_blocked", deploy: "deploy_failed"} {
		if got := insight.Cause(st); got != want {
			t.Errorf("cause of %s: %q, want %q", st.Def.Name, got, want)
		}
	}
	if !strings.HasPrefix(insight.CauseInfra, "infra") {
		t.Fatal("taxonomy names changed: update docs/insights.md")
	}
}
