// Package run holds a run's state as an append-only log of events. The state is never stored
// on its own: it is a pure fold over the events (Fold), so after a crash it is rebuilt by
// replay, and every change is auditable. Next decides, from a state alone, which events move
// the run forward (queue ready stages, skip what cannot run, retry, finish); the scheduler only
// executes stages and appends what Next and the executor report.
package run

import (
	"time"

	"github.com/paved/paved/internal/pipeline"
)

// Type names an event. The names are part of the API and the JSON lines of `paved run --events`.
type Type string

const (
	RunCreated         Type = "RunCreated"         // Info set; always seq 1
	StageQueued        Type = "StageQueued"        // the stage's needs succeeded; Attempt set, Reason on a retry or re-run
	StageStarted       Type = "StageStarted"       // an executor took the stage; Attempt set
	StepStarted        Type = "StepStarted"        // Step (1-based) and StepName set
	StepFinished       Type = "StepFinished"       // Step, ExitCode, DurationMS set
	StageFinished      Type = "StageFinished"      // Status: succeeded, failed, skipped or cancelled; Reason says why; Sandbox names the isolation used
	StageInterrupted   Type = "StageInterrupted"   // the stage's process died with the server; it is queued again
	RunCancelRequested Type = "RunCancelRequested" // Reason says who or what cancelled
	RunFinished        Type = "RunFinished"        // Status: the run's final phase
)

// Event is one fact about a run. Fields beyond the first five are set by the types that
// need them (see the Type constants) and left out of JSON otherwise.
type Event struct {
	RunID string    `json:"run_id"`
	Seq   int64     `json:"seq"` // 1, 2, 3, ... with no gaps within a run
	Type  Type      `json:"type"`
	Time  time.Time `json:"time"`
	Stage string    `json:"stage,omitempty"`

	Attempt    int    `json:"attempt,omitempty"`
	Step       int    `json:"step,omitempty"` // 1-based
	StepName   string `json:"step_name,omitempty"`
	ExitCode   *int   `json:"exit_code,omitempty"`
	DurationMS int64  `json:"duration_ms,omitempty"`
	Status     string `json:"status,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Sandbox    string `json:"sandbox,omitempty"`
	Info       *Info  `json:"info,omitempty"`
}

// Info is what a run was created from; it is all a replay needs besides the events.
type Info struct {
	Repo     string             `json:"repo"` // full name, e.g. acme/payments; "local" for paved run
	Team     string             `json:"team,omitempty"`
	Ref      string             `json:"ref,omitempty"`
	SHA      string             `json:"sha,omitempty"`
	Trigger  Trigger            `json:"trigger"`
	Source   Source             `json:"source"`
	Pipeline *pipeline.Pipeline `json:"pipeline"`
	// File is the pipeline file's path in the repository.
	File string `json:"file"`
}

// Trigger is what started the run, as far as stage conditions (when:) and variables need it.
type Trigger struct {
	Kind   string   `json:"kind"` // push, pull_request, tag, manual, cron
	Branch string   `json:"branch,omitempty"`
	Tag    string   `json:"tag,omitempty"`
	Author string   `json:"author,omitempty"`
	Paths  []string `json:"paths,omitempty"` // changed files; nil when unknown
}

// Source is where stage workspaces come from (see execute.Source).
type Source struct {
	Repo string `json:"repo,omitempty"` // git path or URL
	SHA  string `json:"sha,omitempty"`
	Dir  string `json:"dir,omitempty"`
}

// Stage statuses.
const (
	StatusPending   = "pending"   // waiting for its needs
	StatusQueued    = "queued"    // ready, waiting for an executor slot
	StatusRunning   = "running"   // an executor has it
	StatusSucceeded = "succeeded" // terminal
	StatusFailed    = "failed"    // terminal unless a retry is left
	StatusSkipped   = "skipped"   // terminal: a need did not succeed, or when: did not match
	StatusCancelled = "cancelled" // terminal
)

// Phase is a run's phase, derived from its stages.
type Phase string

const (
	Pending    Phase = "PENDING"
	Building   Phase = "BUILDING"
	Testing    Phase = "TESTING"
	Deploying  Phase = "DEPLOYING"
	Verifying  Phase = "VERIFYING"
	Succeeded  Phase = "SUCCEEDED"
	Failed     Phase = "FAILED"
	RolledBack Phase = "ROLLED_BACK"
	Cancelled  Phase = "CANCELLED"
)

// Done reports whether the phase is final.
func (p Phase) Done() bool {
	switch p {
	case Succeeded, Failed, RolledBack, Cancelled:
		return true
	}
	return false
}

// LogLine is one line of a stage's output, masked before it is stored or streamed.
type LogLine struct {
	RunID string    `json:"run_id"`
	Stage string    `json:"stage"`
	Seq   int64     `json:"seq"` // per run and stage, from 1, across attempts
	Time  time.Time `json:"time"`
	Text  string    `json:"text"`
}
