package schedule

import (
	"context"

	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
)

// Kind runs a built-in stage kind (`uses: gate/...`, `deploy:`) inside the server instead of
// handing the stage to the executor: such a stage runs paved's own code, not the user's, so
// it needs no sandbox, and what it decides (findings, deployment steps) becomes events.
//
// Lifecycle: Kinds are made by cmd/ and passed in Config.Kinds, keyed by the name a pipeline
// uses ("gate/secrets", ..., and "deploy" for deploy: stages); Run may be called concurrently,
// one call per stage attempt, and blocks until the stage ends. When ctx is done (cancel,
// timeout, scheduler stop) Run returns promptly with ctx's error (wrapped). A stage that ran
// and decided to fail (a gate blocks, a deployment rolled back) is a KindResult with Failed
// set and a nil error; an error means the kind could not do its part.
//
// If the server dies while a kind runs, the attempt is recorded as interrupted and the stage
// runs again from the start after the restart, like any stage: Run must be safe to repeat.
type Kind interface {
	Run(ctx context.Context, job KindJob, rec KindRecorder) (KindResult, error)
}

// KindJob is one attempt of a built-in stage.
type KindJob struct {
	RunID   string
	Stage   string
	Attempt int
	// Info is the run's: repo, commit, trigger, source and the whole pipeline.
	Info *run.Info
	// Def is the stage: Uses and With, or Deploy.
	Def *pipeline.Stage
	// Env is the stage's environment as steps would get it, secrets resolved.
	Env map[string]string
	// ArtifactsIn are the artifacts of the stages upstream of this one, in stage order (a
	// later entry replaces an earlier one at the same path), stored by digest in the
	// artifact store.
	ArtifactsIn []execute.Artifact
}

// KindRecorder is how a Kind reports while it runs. Its methods may be called from any
// goroutine until Run returns, never after.
type KindRecorder interface {
	// Log writes one line to the stage's log (secrets masked, stored, streamed).
	Log(line string)
	// Event appends e to the run's log, durably, before it returns; Stage and Attempt are
	// set by the recorder. Only the types the run package lets a stage carry (GateEvaluated,
	// the Deployment* events) belong here.
	Event(e run.Event) error
}

// KindResult is how a built-in stage ended when the kind did its part.
type KindResult struct {
	// Failed says the stage failed; Reason says why, in one line for the run view.
	Failed bool
	Reason string
	// Artifacts are files the kind stored in the artifact store (an SBOM, say), reported like
	// an executor's: downstream stages get them.
	Artifacts []execute.Artifact
}

// kindName is the key of Config.Kinds that runs def, or "" for a stage of steps.
func kindName(def *pipeline.Stage) string {
	switch {
	case def.Deploy != nil:
		return "deploy"
	case def.Uses != "":
		return def.Uses
	}
	return ""
}

// kindRecorder records a Kind's output like an executor observer records steps.
type kindRecorder struct {
	o *observer
}

func (r kindRecorder) Log(line string) { r.o.logs.line(line) }

func (r kindRecorder) Event(e run.Event) error {
	e.Stage, e.Attempt = r.o.stage, r.o.attempt
	r.o.a.mu.Lock()
	defer r.o.a.mu.Unlock()
	return r.o.s.appendLocked(r.o.ctx, r.o.a, e)
}
