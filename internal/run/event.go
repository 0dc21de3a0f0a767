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
	RunCreated       Type = "RunCreated"       // Info set; always seq 1
	StageQueued      Type = "StageQueued"      // the stage's needs succeeded; Attempt set, Reason on a retry or re-run
	StageStarted     Type = "StageStarted"     // an executor took the stage; Attempt set
	StepStarted      Type = "StepStarted"      // Step (1-based) and StepName set
	StepFinished     Type = "StepFinished"     // Step, ExitCode, DurationMS set
	StageFinished    Type = "StageFinished"    // Status: succeeded, failed, skipped or cancelled; Reason says why; Sandbox names the isolation used; CPUMS and MaxRSS what it used
	StageInterrupted Type = "StageInterrupted" // the stage's process died with the server; it is queued again
	CacheRestored    Type = "CacheRestored"    // Cache set: a dependency cache's restore, Status hit, partial or miss
	CacheSaved       Type = "CacheSaved"       // Cache set: a dependency cache's save, Status saved, exists, empty or failed
	ArtifactsStored  Type = "ArtifactsStored"  // Artifacts set: what the stage's artifacts: matched, stored by digest; appended with its StageFinished
	GateEvaluated    Type = "GateEvaluated"    // Gate set: a gate stage's findings and decision
	TestsReported    Type = "TestsReported"    // Tests set: what the stage's JUnit reports said; appended with its StageFinished
	CoverageReported Type = "CoverageReported" // Coverage set: what the stage's coverage reports said; appended with its StageFinished
	// A deploy stage's progress; Deployment set.
	DeploymentStarted      Type = "DeploymentStarted"
	DeploymentStepAdvanced Type = "DeploymentStepAdvanced"
	AnalysisRun            Type = "AnalysisRun"
	RollbackStarted        Type = "RollbackStarted"
	DeploymentFinished     Type = "DeploymentFinished"
	RunCancelRequested     Type = "RunCancelRequested" // Reason says who or what cancelled
	RunFinished            Type = "RunFinished"        // Status: the run's final phase
	// PromotionRecorded: a promotion of the run's freight moved or was decided on, after the
	// run finished (internal/promote). Status is the promotion's state, or "approved" /
	// "rejected" for a decision; Reason says which promotion, where, who and why.
	PromotionRecorded Type = "PromotionRecorded"
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
	// CPUMS (CPU time, user and system, in ms) and MaxRSS (the largest resident set of one
	// process, in bytes) are what a stage's processes used, on StageFinished when measured.
	CPUMS  int64  `json:"cpu_ms,omitempty"`
	MaxRSS int64  `json:"max_rss_bytes,omitempty"`
	Info   *Info  `json:"info,omitempty"`
	Cache  *Cache `json:"cache,omitempty"`
	// Artifacts is set by ArtifactsStored.
	Artifacts []Artifact `json:"artifacts,omitempty"`
	// Gate is set by GateEvaluated.
	Gate *Gate `json:"gate,omitempty"`
	// Deployment is set by the Deployment* events, AnalysisRun and RollbackStarted.
	Deployment *Deployment `json:"deployment,omitempty"`
	// Tests is set by TestsReported.
	Tests *Tests `json:"tests,omitempty"`
	// Coverage is set by CoverageReported.
	Coverage *Coverage `json:"coverage,omitempty"`
}

// Coverage is what a stage's coverage reports (reports: {coverage: glob}) said, summed over
// the files: statements (Go) or lines (Cobertura, LCOV) run at least once of all there are.
// Promotion policies (coverage: {min: N}) read Percent.
type Coverage struct {
	Files   []string `json:"files"`
	Format  string   `json:"format"` // go, cobertura, lcov or mixed
	Covered int64    `json:"covered"`
	Total   int64    `json:"total"`
	Percent float64  `json:"percent"` // rounded down to one decimal
	// Note says which files could not be read and why.
	Note string `json:"note,omitempty"`
}

// Artifact types.
const (
	ArtifactFile    = "file"
	ArtifactSymlink = "symlink"
	ArtifactDir     = "dir" // an empty directory; one with entries is made by them
)

// Artifact is one entry that a stage's artifacts: globs matched (ArtifactsStored). A file's
// bytes are the blob named by its digest in the artifact store; downstream stages get it at
// Path.
type Artifact struct {
	Path   string `json:"path"` // relative to the workspace, slash-separated
	Type   string `json:"type"` // file, symlink or dir
	Digest string `json:"digest,omitempty"`
	Size   int64  `json:"size"`           // a file's bytes; 0 for the others
	Mode   string `json:"mode,omitempty"` // permission bits in octal, e.g. "0755"; not for a symlink
	Link   string `json:"link,omitempty"` // a symlink's target, as written
}

// Cache is what one restore or save of a stage's dependency cache did (CacheRestored,
// CacheSaved; the event's Status is the same as Cache.Status).
type Cache struct {
	Paths   []string `json:"paths"`             // the cache's paths, naming it
	Key     string   `json:"key"`               // the key computed from the key files
	Status  string   `json:"status"`            // hit, partial, miss; saved, exists, empty, failed
	Matched string   `json:"matched,omitempty"` // the restored entry's key
	Scope   string   `json:"scope,omitempty"`   // where it was restored from or saved to, e.g. branch:main
	Digest  string   `json:"digest,omitempty"`
	Size    int64    `json:"size,omitempty"` // compressed bytes
	Note    string   `json:"note,omitempty"` // trouble on the way (a corrupt entry ignored)
}

// Info is what a run was created from; it is all a replay needs besides the events.
type Info struct {
	Repo string `json:"repo"` // full name, e.g. acme/payments; "local" for paved run
	Team string `json:"team,omitempty"`
	Ref  string `json:"ref,omitempty"`
	SHA  string `json:"sha,omitempty"`
	// CommittedAt is the commit's time (git's committer date), recorded when the run is
	// created: lead time to production is measured from it. Zero when unknown (paved run).
	CommittedAt time.Time          `json:"committed_at,omitzero"`
	Trigger     Trigger            `json:"trigger"`
	Source      Source             `json:"source"`
	Pipeline    *pipeline.Pipeline `json:"pipeline"`
	// File is the pipeline file's path in the repository.
	File string `json:"file"`
	// DefaultBranch is the repository's default branch, whose dependency caches every run
	// may read and only its own pushes write. Empty means main.
	DefaultBranch string `json:"default_branch,omitempty"`
	// Hotfix asks for the hotfix priority class whatever the branch.
	Hotfix bool `json:"hotfix,omitempty"`
	// Priority is the run's priority class (hotfix, default, branch, scheduled), decided by
	// the scheduler when it creates the run and recorded here so that it is visible and
	// survives a restart.
	Priority string `json:"priority,omitempty"`
	// Group is the pipeline's concurrency group with trigger variables expanded; empty
	// without concurrency:. Runs of one repository sharing a group obey its limit.
	Group string `json:"group,omitempty"`
}

// Trigger is what started the run, as far as stage conditions (when:) and variables need it.
type Trigger struct {
	Kind   string   `json:"kind"` // push, pull_request, tag, manual, cron
	Branch string   `json:"branch,omitempty"`
	Tag    string   `json:"tag,omitempty"`
	Author string   `json:"author,omitempty"`
	Paths  []string `json:"paths,omitempty"` // changed files; nil when unknown

	// Set for runs started from the trigger inbox (see trigger.Trigger, docs/webhooks.md).
	ID           string   `json:"id,omitempty"`       // the trigger's id (GET /api/v1/triggers/{id})
	Provider     string   `json:"provider,omitempty"` // github, gitlab, bitbucket, generic, api, cron
	Action       string   `json:"action,omitempty"`   // e.g. opened, synchronize for pull requests
	Before       string   `json:"before,omitempty"`   // the ref's previous commit
	Message      string   `json:"message,omitempty"`  // the head commit's message
	AuthorName   string   `json:"author_name,omitempty"`
	AuthorEmail  string   `json:"author_email,omitempty"`
	PRNumber     int      `json:"pr_number,omitempty"`
	PRTitle      string   `json:"pr_title,omitempty"`
	SourceBranch string   `json:"source_branch,omitempty"` // a pull request's head branch; Branch is its target
	Labels       []string `json:"labels,omitempty"`        // a pull request's labels
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
