package insight

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/paved/paved/internal/run"
)

// Failure causes: why a stage attempt ended without success. Every failed or cancelled
// attempt has exactly one, decided from its events alone (Cause).
const (
	CauseTestFailure = "test_failure"   // a step of a test-phase stage exited non-zero
	CauseBuildError  = "build_error"    // a step of any other stage exited non-zero
	CauseGateBlocked = "gate_blocked"   // a gate stage decided to block
	CauseDeploy      = "deploy_failed"  // a deploy stage failed or rolled back
	CauseInfra       = "infrastructure" // the executor or a built-in kind could not do its part
	CauseTimeout     = "timeout"        // the stage ran past its timeout
	CauseCancelled   = "cancelled"      // the run was cancelled or superseded
)

// Cause classifies how a stage ended; "" for one that did not fail (succeeded, skipped,
// still going). A skipped stage is not a failure of its own: its need's failure is counted.
func Cause(st *run.StageState) string {
	switch st.Status {
	case run.StatusCancelled:
		return CauseCancelled
	case run.StatusFailed:
	default:
		return ""
	}
	switch {
	case strings.HasPrefix(st.Reason, "timed out after "):
		return CauseTimeout
	case st.Def.Deploy != nil:
		return CauseDeploy
	case slices.ContainsFunc(st.Gates, func(g run.Gate) bool { return g.Decision == "block" }):
		return CauseGateBlocked
	case st.ExitCode == nil || *st.ExitCode == 0:
		// No step exited non-zero: the executor (or a kind) failed, or a secret was missing.
		return CauseInfra
	case st.Def.Phase == "test":
		return CauseTestFailure
	}
	return CauseBuildError
}

// Filter selects the runs and stages an analysis covers. Zero fields do not filter.
type Filter struct {
	Since, Until time.Time // CreatedAt in [Since, Until)
	Pipeline     string
	Team         string
	Repo         string
	Branch       string
	Stage        string // only this stage (its base name or an expanded name) in the stage figures
}

// Match reports whether a run is in the filter.
func (f Filter) Match(s *run.State) bool {
	i := s.Info
	switch {
	case !f.Since.IsZero() && s.CreatedAt.Before(f.Since),
		!f.Until.IsZero() && !s.CreatedAt.Before(f.Until),
		f.Pipeline != "" && i.Pipeline.Name != f.Pipeline,
		f.Team != "" && i.Team != f.Team,
		f.Repo != "" && i.Repo != f.Repo,
		f.Branch != "" && i.Trigger.Branch != f.Branch:
		return false
	}
	return true
}

func (f Filter) matchStage(st *run.StageState) bool {
	return f.Stage == "" || st.Def.Name == f.Stage || st.Def.Base == f.Stage
}

// Percentiles are nearest-rank percentiles of a sample in milliseconds: pN is the smallest
// value at or above N% of the sample. Count 0 leaves them zero.
type Percentiles struct {
	Count int   `json:"count"`
	P50   int64 `json:"p50"`
	P95   int64 `json:"p95"`
	P99   int64 `json:"p99"`
	Max   int64 `json:"max"`
}

// percentiles sorts xs in place and reads the nearest-rank percentiles from it.
func percentiles(xs []int64) Percentiles {
	p := Percentiles{Count: len(xs)}
	if len(xs) == 0 {
		return p
	}
	slices.Sort(xs)
	rank := func(q float64) int64 {
		i := int(math.Ceil(q*float64(len(xs)))) - 1
		return xs[min(max(i, 0), len(xs)-1)]
	}
	p.P50, p.P95, p.P99, p.Max = rank(0.50), rank(0.95), rank(0.99), xs[len(xs)-1]
	return p
}

// Report is what Analyze finds in a set of runs.
type Report struct {
	Runs   RunFigures     `json:"runs"`
	Stages []StageFigures `json:"stages"` // by stage name
	// QueueWaitMS is every started stage attempt's wait from queued to started.
	QueueWaitMS Percentiles `json:"queue_wait_ms"`
	// Failures counts failed or cancelled stage attempts that ended the stage (the last
	// attempt), by cause.
	Failures map[string]int `json:"failures_by_cause"`
}

// RunFigures are counts and durations of whole runs.
type RunFigures struct {
	Total    int            `json:"total"`
	Finished int            `json:"finished"`
	ByPhase  map[string]int `json:"by_phase"`
	// FailureRate is failed and rolled-back runs over finished runs (cancelled ones count as
	// finished, not failed).
	FailureRate float64 `json:"failure_rate"`
	// DurationMS is from created to finished, over finished runs.
	DurationMS Percentiles `json:"duration_ms"`
}

// StageFigures are one stage name's figures across runs.
type StageFigures struct {
	Name string `json:"name"`
	// Runs counts runs in which the stage ended (succeeded, failed, cancelled; not skipped).
	Runs        int            `json:"runs"`
	Failed      int            `json:"failed"`
	FailureRate float64        `json:"failure_rate"`
	Causes      map[string]int `json:"causes,omitempty"`
	// DurationMS is the last attempt's, started to finished, over stages that ran to an end.
	DurationMS  Percentiles `json:"duration_ms"`
	QueueWaitMS Percentiles `json:"queue_wait_ms"`
}

// Analyze computes the figures of the runs that f matches. It reads each run's folded state,
// so it holds what the event log says and nothing else.
func Analyze(states []*run.State, f Filter) Report {
	rep := Report{Runs: RunFigures{ByPhase: map[string]int{}}, Failures: map[string]int{}}
	var runDur, wait []int64
	type acc struct {
		fig       StageFigures
		dur, wait []int64
	}
	stages := map[string]*acc{}
	failedRuns := 0
	for _, s := range states {
		if !f.Match(s) {
			continue
		}
		rep.Runs.Total++
		rep.Runs.ByPhase[string(s.Phase)]++
		if s.Done() {
			rep.Runs.Finished++
			runDur = append(runDur, s.FinishedAt.Sub(s.CreatedAt).Milliseconds())
			if s.Phase == run.Failed || s.Phase == run.RolledBack {
				failedRuns++
			}
		}
		for _, st := range s.Stages {
			if !f.matchStage(st) {
				continue
			}
			a := stages[st.Def.Name]
			if a == nil {
				a = &acc{fig: StageFigures{Name: st.Def.Name, Causes: map[string]int{}}}
				stages[st.Def.Name] = a
			}
			if !st.StartedAt.IsZero() {
				w := st.StartedAt.Sub(st.QueuedAt).Milliseconds()
				a.wait, wait = append(a.wait, w), append(wait, w)
			}
			switch st.Status {
			case run.StatusSucceeded, run.StatusFailed, run.StatusCancelled:
			default:
				continue
			}
			a.fig.Runs++
			if !st.StartedAt.IsZero() && !st.FinishedAt.IsZero() {
				a.dur = append(a.dur, st.FinishedAt.Sub(st.StartedAt).Milliseconds())
			}
			if c := Cause(st); c != "" {
				a.fig.Failed++
				a.fig.Causes[c]++
				rep.Failures[c]++
			}
		}
	}
	if rep.Runs.Finished > 0 {
		rep.Runs.FailureRate = float64(failedRuns) / float64(rep.Runs.Finished)
	}
	rep.Runs.DurationMS = percentiles(runDur)
	rep.QueueWaitMS = percentiles(wait)
	for _, a := range stages {
		a.fig.DurationMS, a.fig.QueueWaitMS = percentiles(a.dur), percentiles(a.wait)
		if a.fig.Runs > 0 {
			a.fig.FailureRate = float64(a.fig.Failed) / float64(a.fig.Runs)
		}
		if len(a.fig.Causes) == 0 {
			a.fig.Causes = nil
		}
		rep.Stages = append(rep.Stages, a.fig)
	}
	slices.SortFunc(rep.Stages, func(a, b StageFigures) int { return cmp.Compare(a.Name, b.Name) })
	return rep
}
