// Package execute defines the executor edge: what the scheduler hands an executor to run one
// stage (a Job), and how the executor reports progress back (an Observer). Implementations
// live in sub-packages named after what they wrap: local (a sandbox on this machine), and
// later agent and kube.
package execute

import (
	"context"
	"errors"
	"io/fs"
	"time"
)

// Executor runs one stage: it prepares the stage's workspace from Job.Source, materialises
// the artifacts of upstream stages, runs the steps in order in one sandbox, and on success
// stores what the artifact globs match by digest and reports it in the Result.
//
// Lifecycle: an Executor is created by cmd/ and shared by every run; Run may be called
// concurrently from many goroutines, one call per stage attempt. Run blocks until the stage
// ends. When ctx is done (cancel or timeout) Run kills the whole process tree of the stage,
// removes its workspace and returns ctx.Err() (wrapped). A step that exits non-zero is not an
// error: Run returns a Result with Failed set and a nil error. An error means the executor
// itself could not do its part (workspace, sandbox, artifacts): an infrastructure failure.
type Executor interface {
	Run(ctx context.Context, job Job, obs Observer) (Result, error)
}

// Job is one attempt of one stage.
type Job struct {
	RunID   string
	Stage   string
	Attempt int
	Source  Source
	Steps   []Step
	// Shell is "sh" (sh -e -c STEP; also when empty) or "bash"
	// (bash --noprofile --norc -eo pipefail -c STEP).
	Shell string
	// Env is the complete environment of every step (secrets resolved). The executor sets
	// HOME, TMPDIR and PAVED_WORKSPACE itself, over any value in Env (they name places only
	// the executor knows), and PATH when Env has none.
	Env map[string]string
	// ArtifactsIn are the artifacts of upstream stages, materialised from the executor's
	// blob store into the workspace at their paths after the source and before the caches
	// and the first step, in order: a later entry replaces an earlier one at the same path,
	// and what is in the way (a symlink of the checkout, say) is replaced rather than
	// followed. A file whose bytes do not hash to its Digest fails the stage with an error
	// naming the path and the digest (wrapping cache.ErrDigest).
	ArtifactsIn []Artifact
	// Artifacts are globs (doublestar, relative to the workspace) whose matches are stored
	// by digest after all steps succeeded and reported in Result.Artifacts. A glob that
	// matches nothing fails the stage with an error that names it.
	Artifacts []string
	// Reports are globs (doublestar, relative to the workspace) of test reports the
	// executor reads after the steps, also when a step failed, and hands back in
	// Result.Reports, at most MaxReportBytes in all. Trouble reading them never fails the
	// stage: it is said in Result.ReportsNote.
	Reports []string
	// Caches are the stage's dependency caches. An executor with a cache store restores each
	// after the workspace is ready and before the first step, and saves it after all steps
	// succeeded unless the restore was an exact hit; it reports both to Observer.Cache. The
	// executor computes the key (it has the workspace the key files are in). An executor
	// without a store ignores them. Trouble with the cache never fails the stage.
	Caches []Cache
	// Labels are the pipeline's runs_on: an executor that runs stages elsewhere (agents)
	// gives the job only to a machine with every one of them. Others ignore it.
	Labels map[string]string
	// Image is the stage's container image (the pipeline's image:) for container
	// executors; the local executor ignores it.
	Image string
	// Resources are the stage's CPU and memory for container executors.
	Resources Resources
	// Team owns the run: container executors run its stages in the team's namespace.
	Team string
	// SecretEnv names the keys of Env whose values are secrets: container executors hand
	// them over through the platform's secret store, never in the pod spec.
	SecretEnv []string
}

// Resources are requests and limits in Kubernetes quantity syntax ("500m", "1Gi"); empty
// means none.
type Resources struct {
	CPURequest    string
	CPULimit      string
	MemoryRequest string
	MemoryLimit   string
}

// Cache is one dependency cache of a stage (the pipeline's cache:), with its scopes resolved.
type Cache struct {
	// Namespace says which stages share entries: repository, pipeline and stage. The
	// executor adds its OS/arch and Paths.
	Namespace string
	// Key is the key's prefix (the pipeline's key:, else the stage name); the executor
	// appends a hash of the namespace and of the contents of KeyFiles.
	Key         string
	KeyFiles    []string
	Paths       []string
	RestoreKeys []string
	// WriteScope is where a save goes; ReadScopes are searched in order (the run's branch,
	// then the default branch). A pull request's WriteScope is its own, never the default
	// branch's.
	WriteScope string
	ReadScopes []string
}

// CacheReport is the outcome of restoring or saving one of Job.Caches.
type CacheReport struct {
	Op     string // "restore" or "save"
	Index  int    // which of Job.Caches
	Key    string // the computed key
	Status string // restore: hit, partial or miss; save: saved, exists, empty or failed
	// Matched is the restored entry's key and Scope where it came from (or where a save went).
	Matched string
	Scope   string
	Digest  string
	Size    int64 // compressed bytes
	Took    time.Duration
	Note    string // what went wrong on the way (a corrupt entry ignored), if anything
}

// Step is one command; it runs with the workspace as working directory.
type Step struct {
	Name string
	Run  string
}

// Source says where the workspace's files come from: exactly one of Dir or Repo is set.
type Source struct {
	// Repo is a git repository (a local path or a URL git can clone) and SHA the commit to
	// check out, detached (hex only; empty means the repository's HEAD). The workspace is a
	// git checkout (with .git) of that commit.
	Repo string
	SHA  string
	// Dir is a plain directory copied as it is (used by `paved run` for the working tree:
	// tracked and untracked files that .gitignore does not exclude).
	Dir string
}

// Observer receives a stage's progress. Calls for one Job come from one goroutine, in order:
// Cache for each restore, then per step StepStarted(i), any number of Output(i, ...),
// StepFinished(i, ...), then after the last step Cache for each save.
// Output's slice is only valid during the call. When Run returns an error (cancel, timeout,
// infrastructure), the last StepStarted may have no StepFinished: the stage's result says
// how it ended.
type Observer interface {
	StepStarted(step int)
	Output(step int, p []byte)
	StepFinished(step int, exitCode int, took time.Duration)
	Cache(r CacheReport)
}

// Result is how a stage attempt ended when the executor did its part.
type Result struct {
	// Failed is true when a step exited non-zero; FailedStep is its index and ExitCode its code.
	Failed     bool
	FailedStep int
	ExitCode   int
	// Sandbox names the isolation that was used ("bubblewrap" or "process-group").
	Sandbox string
	// Artifacts are what Job.Artifacts matched, stored by digest, sorted by path; set only
	// when every step succeeded. A matched directory is listed as its files and symlinks
	// (and, when empty, itself).
	Artifacts []Artifact
	// CPU is the CPU time (user and system) the steps' processes used, and MaxRSS the
	// largest resident set one of them had, in bytes; zero when the executor does not
	// measure them or the stage was cancelled.
	CPU    time.Duration
	MaxRSS int64
	// Reports are the files Job.Reports matched, sorted by path, read after the steps
	// whether or not they failed (not when the job was cancelled or the executor failed).
	Reports []Report
	// ReportsNote says which report files were left out and why (over MaxReportBytes,
	// unreadable); empty when all were read.
	ReportsNote string
}

// MaxReportBytes bounds the report files of one stage attempt together: a runaway report
// must not fill the server's memory.
const MaxReportBytes = 16 << 20

// Report is one test report file a stage wrote.
type Report struct {
	Path string // slash-separated, relative to the workspace
	Data []byte
}

// Artifact is one entry a stage produced: a regular file stored by digest, a symlink kept
// as a link (its target recorded, never followed), or an empty directory.
type Artifact struct {
	// Path is slash-separated and relative to the workspace, without "." or ".." elements.
	Path string
	// Digest is "sha256:<hex>" of a file's bytes, the name of its blob; empty otherwise.
	Digest string
	// Size is a file's length in bytes; 0 otherwise.
	Size int64
	// Mode is the entry's type (0, fs.ModeSymlink or fs.ModeDir) and permission bits.
	Mode fs.FileMode
	// Link is a symlink's target, as the step wrote it.
	Link string
}

// ErrArtifactMissing is wrapped by Run's error when an artifact glob matched nothing.
var ErrArtifactMissing = errors.New("execute: artifact not found")

// ErrLost is wrapped by Run's error when the machine that ran the job stopped answering
// (an agent whose lease expired): the stage did not fail, it may be run again elsewhere.
var ErrLost = errors.New("execute: agent_lost")
