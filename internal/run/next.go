package run

import (
	"fmt"
	"strings"
	"time"

	"github.com/paved/paved/internal/pipeline"
)

// Next returns the events that move the run forward from state s, stamped with now and
// numbered from s.Seq+1: stages whose needs all succeeded are queued, stages that can no
// longer run are skipped (with the need that stopped them), failed stages with retries left
// are queued again, a cancelled run cancels what has not started, and a run whose stages are
// all terminal finishes. It is pure: the same state gives the same events, so any server can
// drive any run after a crash. It returns nil when nothing is to be done until a running
// stage reports.
func Next(s *State, now time.Time) []Event {
	if s.Done() {
		return nil
	}
	var out []Event
	emit := func(e Event) {
		e.RunID, e.Seq, e.Time = s.ID, s.Seq+int64(len(out))+1, now
		out = append(out, e)
	}
	// Decisions made in this pass, so that a skip cascades down the DAG in one call.
	decided := map[string]string{}
	status := func(st *StageState) string {
		if d, ok := decided[st.Name()]; ok {
			return d
		}
		return st.Status
	}
	finallyFailed := func(st *StageState) bool {
		switch status(st) {
		case StatusSkipped, StatusCancelled:
			return true
		case StatusFailed:
			return !st.retryLeft()
		}
		return false
	}

	running := 0
	for _, st := range s.Stages {
		switch st.Status {
		case StatusRunning:
			running++
			continue
		case StatusFailed:
			if st.retryLeft() && !s.CancelRequested {
				emit(Event{Type: StageQueued, Stage: st.Name(), Attempt: st.Attempt + 1,
					Reason: fmt.Sprintf("retry %d of %d: %s", st.Attempt-st.Reruns, st.Def.Retries, st.Reason)})
				decided[st.Name()] = StatusQueued
			}
			continue
		case StatusPending, StatusQueued:
		default:
			continue
		}
		if s.CancelRequested {
			emit(Event{Type: StageFinished, Stage: st.Name(), Status: StatusCancelled, Reason: "run cancelled: " + s.CancelReason})
			decided[st.Name()] = StatusCancelled
			continue
		}
		if st.Status == StatusQueued {
			continue
		}
		if ok, why := st.Def.When.Match(s.matchInput()); !ok {
			emit(Event{Type: StageFinished, Stage: st.Name(), Status: StatusSkipped, Reason: "when: " + why})
			decided[st.Name()] = StatusSkipped
			continue
		}
		ready := true
		for _, n := range st.Def.Needs {
			need := s.byName[n]
			if finallyFailed(need) {
				emit(Event{Type: StageFinished, Stage: st.Name(), Status: StatusSkipped,
					Reason: fmt.Sprintf("need %s %s", n, status(need))})
				decided[st.Name()] = StatusSkipped
				ready = false
				break
			}
			if status(need) != StatusSucceeded {
				ready = false
			}
		}
		if _, skipped := decided[st.Name()]; skipped || !ready {
			continue
		}
		reason := ""
		if st.Reruns > 0 && st.Attempt > 0 {
			reason = "re-run: " + st.Reason
		}
		emit(Event{Type: StageQueued, Stage: st.Name(), Attempt: st.Attempt + 1, Reason: reason})
		decided[st.Name()] = StatusQueued
	}
	if running > 0 {
		return out
	}
	var failed, rolledBack []string
	for _, st := range s.Stages {
		if !terminalAfter(st, status(st), s.CancelRequested) {
			return out
		}
		if status(st) == StatusFailed {
			failed = append(failed, st.Name())
			if st.Deployment != nil && st.Deployment.Outcome == DeployRolledBack {
				rolledBack = append(rolledBack, st.Name())
			}
		}
	}
	switch {
	case s.CancelRequested:
		emit(Event{Type: RunFinished, Status: string(Cancelled), Reason: s.CancelReason})
	case len(rolledBack) > 0 && len(rolledBack) == len(failed):
		// Every failure is a deployment that was judged bad and undone: the environments
		// are as they were, which is what ROLLED_BACK tells apart from FAILED.
		emit(Event{Type: RunFinished, Status: string(RolledBack), Reason: "rolled back: " + strings.Join(rolledBack, ", ")})
	case len(failed) > 0:
		emit(Event{Type: RunFinished, Status: string(Failed), Reason: "failed: " + strings.Join(failed, ", ")})
	default:
		emit(Event{Type: RunFinished, Status: string(Succeeded)})
	}
	return out
}

// terminalAfter is Terminal for a stage whose status this pass may have decided. A failed
// stage of a cancelled run gets no retry.
func terminalAfter(st *StageState, status string, cancelled bool) bool {
	switch status {
	case StatusSucceeded, StatusSkipped, StatusCancelled:
		return true
	case StatusFailed:
		return cancelled || !st.retryLeft()
	}
	return false
}

func (s *State) matchInput() pipeline.MatchInput {
	t := s.Info.Trigger
	return pipeline.MatchInput{Event: t.Kind, Branch: t.Branch, Tag: t.Tag, Paths: t.Paths}
}
