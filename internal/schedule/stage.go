package schedule

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// runStage runs one queued stage attempt to its end and records it.
func (s *Scheduler) runStage(a *active, it item) {
	defer s.release()
	ctx := s.base

	a.mu.Lock()
	st := a.state.Stage(it.stage)
	if s.ctx.Err() != nil || st == nil || st.Status != run.StatusQueued || st.Attempt != it.attempt || a.state.CancelRequested {
		a.mu.Unlock() // stopping, or cancelled or superseded while it waited
		return
	}
	job, secrets, jobErr := s.job(ctx, a.state, st)
	a.secrets = appendNew(a.secrets, secrets...)
	if err := s.appendLocked(ctx, a, run.Event{Type: run.StageStarted, Stage: it.stage, Attempt: it.attempt}); err != nil {
		a.mu.Unlock()
		s.log.Error("cannot start stage", "run", a.state.ID, "stage", it.stage, "err", err)
		return
	}
	stageCtx, cancel := context.WithCancelCause(ctx)
	stageCtx, cancelTimeout := context.WithTimeout(stageCtx, st.Def.Timeout)
	a.cancels[it.stage] = cancel
	lw := s.newLogWriter(ctx, a, it.stage)
	a.mu.Unlock()

	var res execute.Result
	err := jobErr
	if err == nil {
		res, err = s.exec.Run(stageCtx, job, &observer{s: s, a: a, ctx: ctx, stage: it.stage, job: &job, logs: lw})
	}
	timedOut := errors.Is(stageCtx.Err(), context.DeadlineExceeded)
	cause := context.Cause(stageCtx)
	cancelTimeout()
	cancel(nil)
	if jobErr != nil {
		lw.line("paved: " + jobErr.Error())
	}
	lw.close()

	fin := run.Event{Type: run.StageFinished, Stage: it.stage, Attempt: it.attempt, Sandbox: res.Sandbox}
	switch {
	case errors.Is(cause, errShutdown):
		// Not finished: the stage is re-run as interrupted after the next Start.
		a.mu.Lock()
		delete(a.cancels, it.stage)
		a.mu.Unlock()
		return
	case errors.Is(cause, errRunCancelled):
		fin.Status, fin.Reason = run.StatusCancelled, "run cancelled: "+a.cancelReason()
	case timedOut:
		fin.Status, fin.Reason = run.StatusFailed, fmt.Sprintf("timed out after %s", st.Def.Timeout)
	case err != nil:
		fin.Status, fin.Reason = run.StatusFailed, err.Error()
	case res.Failed:
		code := res.ExitCode
		fin.Status, fin.ExitCode = run.StatusFailed, &code
		fin.Reason = fmt.Sprintf("step %d (%s) exited with code %d", res.FailedStep+1, job.Steps[res.FailedStep].Name, code)
	default:
		fin.Status = run.StatusSucceeded
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.cancels, it.stage)
	if err := s.appendLocked(ctx, a, fin); err != nil {
		s.log.Error("cannot record stage result", "run", a.state.ID, "stage", it.stage, "err", err)
		return
	}
	if err := s.advanceLocked(ctx, a); err != nil {
		s.log.Error("cannot advance run", "run", a.state.ID, "err", err)
	}
}

func (a *active) cancelReason() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state.CancelReason
}

// job builds the executor's job for a stage attempt and returns the secret values it holds.
// An error (a missing secret) fails the attempt before anything runs.
func (s *Scheduler) job(ctx context.Context, state *run.State, st *run.StageState) (execute.Job, []string, error) {
	info, def := state.Info, st.Def
	env := map[string]string{
		"CI": "true", "PAVED": "true",
		"PAVED_RUN_ID": state.ID, "PAVED_STAGE": def.Name, "PAVED_ATTEMPT": strconv.Itoa(st.Attempt),
		"PAVED_REPO": info.Repo, "PAVED_REF": info.Ref, "PAVED_SHA": info.SHA,
		"PAVED_BRANCH": info.Trigger.Branch, "PAVED_TAG": info.Trigger.Tag,
		"PAVED_EVENT": info.Trigger.Kind, "PAVED_PIPELINE": info.Pipeline.Name,
	}
	maps.Copy(env, def.Matrix)
	var secrets []string
	var missing error
	for _, name := range slices.Sorted(maps.Keys(def.Env)) {
		v := def.Env[name]
		if v.Secret == "" {
			env[name] = v.Value
			continue
		}
		val, err := s.cfg.Secrets(ctx, info, v.Secret)
		if err != nil {
			missing = errors.Join(missing, fmt.Errorf("secret %s for env %s: %w", v.Secret, name, err))
			continue
		}
		env[name] = val
		secrets = append(secrets, val)
	}
	job := execute.Job{
		RunID: state.ID, Stage: def.Name, Attempt: st.Attempt,
		Source:       execute.Source{Repo: info.Source.Repo, SHA: info.Source.SHA, Dir: info.Source.Dir},
		Shell:        def.Shell,
		Env:          env,
		Artifacts:    def.Artifacts,
		ArtifactsOut: s.artifactDir(state.ID, def.Name),
	}
	for _, step := range def.Steps {
		job.Steps = append(job.Steps, execute.Step{Name: step.Name, Run: step.Run})
	}
	if len(def.Cache) > 0 {
		scopes := cache.ScopesFor(info.Trigger.Kind, info.Trigger.Branch, info.Trigger.Tag, info.DefaultBranch)
		for _, c := range def.Cache {
			prefix := c.Key
			if prefix == "" {
				prefix = def.Name
			}
			job.Caches = append(job.Caches, execute.Cache{
				// The pipeline's name tells apart projects that `paved run` all calls "local".
				Namespace: info.Repo + "\x00" + info.Pipeline.Name + "\x00" + def.Name,
				Key:       prefix, KeyFiles: c.KeyFiles, Paths: c.Paths, RestoreKeys: c.RestoreKeys,
				WriteScope: scopes.Write, ReadScopes: scopes.Read,
			})
		}
	}
	for _, up := range info.Pipeline.Upstream(def.Name) {
		if u := info.Pipeline.Stage(up); u != nil && len(u.Artifacts) > 0 {
			job.ArtifactsIn = append(job.ArtifactsIn, s.artifactDir(state.ID, up))
		}
	}
	if len(job.Steps) == 0 {
		missing = errors.Join(missing, fmt.Errorf("stage kind %q cannot run on this executor", def.Uses))
	}
	return job, secrets, missing
}

func appendNew(list []string, vals ...string) []string {
	for _, v := range vals {
		if v != "" && !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}

// observer records a stage's steps as events and its output as log lines.
type observer struct {
	s     *Scheduler
	a     *active
	ctx   context.Context
	stage string
	job   *execute.Job
	logs  *logWriter
}

func (o *observer) StepStarted(step int) {
	name := o.job.Steps[step].Name
	o.logs.line("$ " + name)
	o.append(run.Event{Type: run.StepStarted, Stage: o.stage, Step: step + 1, StepName: name})
}

func (o *observer) Output(_ int, p []byte) { o.logs.write(p) }

func (o *observer) StepFinished(step int, exitCode int, took time.Duration) {
	o.logs.flushPartial()
	code := exitCode
	o.append(run.Event{Type: run.StepFinished, Stage: o.stage, Step: step + 1, StepName: o.job.Steps[step].Name,
		ExitCode: &code, DurationMS: took.Milliseconds()})
}

func (o *observer) Cache(r execute.CacheReport) {
	typ, verb := run.CacheRestored, "restored"
	if r.Op == "save" {
		typ, verb = run.CacheSaved, "saved"
	}
	paths := o.job.Caches[r.Index].Paths
	line := fmt.Sprintf("paved: cache %s %s: %s", strings.Join(paths, ", "), verb, r.Status)
	if r.Matched != "" && r.Matched != r.Key {
		line += " (from " + r.Matched + ")"
	}
	if r.Note != "" {
		line += "; " + r.Note
	}
	o.logs.line(line)
	o.append(run.Event{Type: typ, Stage: o.stage, Status: r.Status, DurationMS: r.Took.Milliseconds(), Cache: &run.Cache{
		Paths: paths, Key: r.Key, Status: r.Status, Matched: r.Matched, Scope: r.Scope, Digest: r.Digest, Size: r.Size, Note: r.Note,
	}})
}

func (o *observer) append(e run.Event) {
	o.a.mu.Lock()
	defer o.a.mu.Unlock()
	if err := o.s.appendLocked(o.ctx, o.a, e); err != nil {
		o.s.log.Error("cannot record step", "run", o.a.state.ID, "stage", o.stage, "err", err)
	}
}

// lastLogSeq finds where a stage's log continues (after a restart, from the store).
func (s *Scheduler) lastLogSeq(ctx context.Context, runID, stage string) int64 {
	lines, err := s.store.LogList(ctx, store.LogListParams{RunID: runID, Stage: stage})
	if err != nil || len(lines) == 0 {
		return 0
	}
	return lines[len(lines)-1].Seq
}
