package run

import (
	"fmt"
	"time"

	"github.com/paved/paved/internal/pipeline"
)

// State is a run as its events tell it. Build it with Fold or Apply only.
type State struct {
	ID              string
	Seq             int64 // seq of the last event applied
	Info            *Info
	CreatedAt       time.Time
	FinishedAt      time.Time
	Phase           Phase
	Reason          string // why the run ended as it did, once finished
	CancelRequested bool
	CancelReason    string
	Stages          []*StageState // in the pipeline's topological order
	byName          map[string]*StageState
}

// StageState is one stage as its events tell it.
type StageState struct {
	Def        *pipeline.Stage
	Status     string
	Attempt    int // attempts started or queued so far, 1-based; 0 before the first StageQueued
	Reruns     int // attempts added because the stage was interrupted, not counted against retries
	QueuedAt   time.Time
	StartedAt  time.Time
	FinishedAt time.Time
	ExitCode   *int
	Reason     string
	Step       int // the step running or last run, 1-based
	StepName   string
	Sandbox    string
	// Caches are the current attempt's cache restores and saves, in order.
	Caches []CacheResult
	// Artifacts are what the current attempt stored, sorted by path; nil until it succeeded
	// with artifacts:.
	Artifacts []Artifact
	// Gates are the current attempt's gate decisions (GateEvaluated), in order.
	Gates []Gate
	// Deployment is where the current attempt's deployment stands; nil for other stages.
	Deployment *Deployment
	// Tests is what the current attempt's JUnit reports said; nil without reports.
	Tests *Tests
	// Coverage is what the current attempt's coverage reports said; nil without them.
	Coverage *Coverage
	// CPUMS and MaxRSS are what the current attempt's processes used (StageFinished).
	CPUMS  int64
	MaxRSS int64
}

// CacheResult is one CacheRestored or CacheSaved event of a stage.
type CacheResult struct {
	Op         string // "restore" or "save"
	DurationMS int64
	Cache
}

// Name is the stage's name.
func (s *StageState) Name() string { return s.Def.Name }

// retryLeft reports whether a failed stage gets another attempt.
func (s *StageState) retryLeft() bool {
	return s.Status == StatusFailed && s.Attempt < 1+s.Def.Retries+s.Reruns
}

// Terminal reports whether the stage will not change again.
func (s *StageState) Terminal() bool { return terminalAfter(s, s.Status, false) }

// Stage returns the named stage's state, or nil.
func (s *State) Stage(name string) *StageState { return s.byName[name] }

// Done reports whether the run has finished.
func (s *State) Done() bool { return s.Phase.Done() }

// Fold rebuilds a run's state from all its events, in order.
func Fold(events []Event) (*State, error) {
	s := &State{}
	for _, e := range events {
		if err := s.Apply(e); err != nil {
			return nil, err
		}
	}
	if s.Info == nil {
		return nil, fmt.Errorf("run: no RunCreated event")
	}
	return s, nil
}

// Apply folds one event into the state. The event must be the next in sequence.
func (s *State) Apply(e Event) error {
	if e.Seq != s.Seq+1 {
		return fmt.Errorf("run %s: event %s has seq %d, want %d", e.RunID, e.Type, e.Seq, s.Seq+1)
	}
	if e.Type != RunCreated && s.Info == nil {
		return fmt.Errorf("run %s: %s before RunCreated", e.RunID, e.Type)
	}
	var st *StageState
	if e.Stage != "" {
		if st = s.byName[e.Stage]; st == nil {
			return fmt.Errorf("run %s: %s names unknown stage %q", e.RunID, e.Type, e.Stage)
		}
	}
	switch e.Type {
	case RunCreated:
		if e.Info == nil || e.Info.Pipeline == nil {
			return fmt.Errorf("run %s: RunCreated without pipeline", e.RunID)
		}
		s.ID, s.Info, s.CreatedAt, s.Phase = e.RunID, e.Info, e.Time, Pending
		s.byName = make(map[string]*StageState, len(e.Info.Pipeline.Stages))
		for _, d := range e.Info.Pipeline.Stages {
			ss := &StageState{Def: d, Status: StatusPending}
			s.Stages = append(s.Stages, ss)
			s.byName[d.Name] = ss
		}
	case StageQueued:
		st.Status, st.Attempt, st.QueuedAt = StatusQueued, e.Attempt, e.Time
		st.StartedAt, st.FinishedAt, st.ExitCode, st.Reason, st.Step, st.StepName = time.Time{}, time.Time{}, nil, e.Reason, 0, ""
		st.Caches, st.Artifacts, st.Gates, st.Deployment, st.Tests, st.Coverage = nil, nil, nil, nil, nil, nil
	case StageStarted:
		st.Status, st.StartedAt = StatusRunning, e.Time
	case StepStarted:
		st.Step, st.StepName = e.Step, e.StepName
	case StepFinished:
		st.ExitCode = e.ExitCode
	case StageFinished:
		st.Status, st.FinishedAt, st.Reason = e.Status, e.Time, e.Reason
		st.CPUMS, st.MaxRSS = e.CPUMS, e.MaxRSS
		if e.Sandbox != "" {
			st.Sandbox = e.Sandbox
		}
		if e.ExitCode != nil {
			st.ExitCode = e.ExitCode
		}
	case CacheRestored, CacheSaved:
		if st == nil || e.Cache == nil {
			return fmt.Errorf("run %s: %s without stage or cache", e.RunID, e.Type)
		}
		op := "restore"
		if e.Type == CacheSaved {
			op = "save"
		}
		st.Caches = append(st.Caches, CacheResult{Op: op, DurationMS: e.DurationMS, Cache: *e.Cache})
	case ArtifactsStored:
		if st == nil {
			return fmt.Errorf("run %s: %s without stage", e.RunID, e.Type)
		}
		st.Artifacts = e.Artifacts
	case TestsReported:
		if st == nil || e.Tests == nil {
			return fmt.Errorf("run %s: %s without stage or tests", e.RunID, e.Type)
		}
		st.Tests = e.Tests
	case CoverageReported:
		if st == nil || e.Coverage == nil {
			return fmt.Errorf("run %s: %s without stage or coverage", e.RunID, e.Type)
		}
		st.Coverage = e.Coverage
	case GateEvaluated:
		if st == nil {
			return fmt.Errorf("run %s: %s without stage", e.RunID, e.Type)
		}
		st.applyGate(e)
	case DeploymentStarted, DeploymentStepAdvanced, AnalysisRun, RollbackStarted, DeploymentFinished:
		if st == nil {
			return fmt.Errorf("run %s: %s without stage", e.RunID, e.Type)
		}
		st.applyDeploy(e)
	case StageInterrupted:
		st.Status, st.Reason = StatusPending, e.Reason
		st.Reruns++
	case RunCancelRequested:
		s.CancelRequested, s.CancelReason = true, e.Reason
	case RunFinished:
		s.Phase, s.FinishedAt, s.Reason = Phase(e.Status), e.Time, e.Reason
	case PromotionRecorded: // the audit trail of the run's freight: no state of the run changes
	default:
		return fmt.Errorf("run %s: unknown event type %q", e.RunID, e.Type)
	}
	s.Seq = e.Seq
	if !s.Phase.Done() {
		s.Phase = s.activePhase()
	}
	return nil
}

var phaseRank = map[string]int{"build": 1, "test": 2, "deploy": 3, "verify": 4}
var rankPhase = []Phase{Pending, Building, Testing, Deploying, Verifying}

// activePhase is the furthest phase among the stages in progress, or, between stages, among
// those that have started. A run that has started nothing is PENDING.
func (s *State) activePhase() Phase {
	active, started := 0, 0
	for _, st := range s.Stages {
		r := phaseRank[st.Def.Phase]
		switch st.Status {
		case StatusQueued, StatusRunning:
			active = max(active, r)
		}
		if !st.StartedAt.IsZero() {
			started = max(started, r)
		}
	}
	if active > 0 {
		return rankPhase[active]
	}
	return rankPhase[started]
}

// Summary is the projection of a run kept for listing.
type Summary struct {
	ID         string    `json:"id"`
	Repo       string    `json:"repo"`
	Team       string    `json:"team,omitempty"`
	Ref        string    `json:"ref,omitempty"`
	SHA        string    `json:"sha,omitempty"`
	Pipeline   string    `json:"pipeline"`
	Trigger    string    `json:"trigger"`
	Phase      Phase     `json:"phase"`
	CreatedAt  time.Time `json:"created_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	LastSeq    int64     `json:"last_seq"`
}

// Summary projects the state for run lists.
func (s *State) Summary() Summary {
	return Summary{
		ID: s.ID, Repo: s.Info.Repo, Team: s.Info.Team, Ref: s.Info.Ref, SHA: s.Info.SHA,
		Pipeline: s.Info.Pipeline.Name, Trigger: s.Info.Trigger.Kind, Phase: s.Phase,
		CreatedAt: s.CreatedAt, FinishedAt: s.FinishedAt, LastSeq: s.Seq,
	}
}
