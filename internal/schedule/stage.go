package schedule

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// runStage runs one queued stage attempt to its end and records it.
func (s *Scheduler) runStage(a *active, it item) {
	defer s.release(it)
	ctx := s.base

	a.mu.Lock()
	st := a.state.Stage(it.stage)
	if s.ctx.Err() != nil || a.lost || st == nil || st.Status != run.StatusQueued || st.Attempt != it.attempt || a.state.CancelRequested {
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
	if s.cfg.OnStageStart != nil {
		s.cfg.OnStageStart(a.state.Info, it.stage, st.StartedAt.Sub(st.QueuedAt))
	}
	stageCtx, cancel := context.WithCancelCause(ctx)
	stageCtx, cancelTimeout := context.WithTimeout(stageCtx, st.Def.Timeout)
	a.cancels[it.stage] = cancel
	lw := s.newLogWriter(ctx, a, it.stage)
	info, started := a.state.Info, st.StartedAt
	a.mu.Unlock()

	var res execute.Result
	var failReason string // a kind's own words for its failure
	err := jobErr
	obs := &observer{s: s, a: a, ctx: ctx, stage: it.stage, attempt: it.attempt, job: &job, logs: lw}
	if err == nil {
		if name := kindName(st.Def); name != "" {
			res, failReason, err = s.runKind(stageCtx, name, a.state.Info, st.Def, job, obs)
		} else {
			ex := s.exec
			if len(st.Def.RunsOn) > 0 && s.cfg.Remote != nil {
				ex = s.cfg.Remote
			}
			res, err = ex.Run(stageCtx, job, obs)
		}
	}
	timedOut := errors.Is(stageCtx.Err(), context.DeadlineExceeded)
	cause := context.Cause(stageCtx)
	cancelTimeout()
	cancel(nil)
	if jobErr != nil {
		lw.line("paved: " + jobErr.Error())
	}
	var tests *run.Tests
	var cov *run.Coverage
	if err == nil && !timedOut && cause == nil {
		junitJob, junitRes, covFiles := splitReports(st.Def.Reports, job, res)
		tests = testsReported(junitJob, junitRes, lw.line)
		cov = coverageReported(covFiles, st.Def.Reports != nil && st.Def.Reports.Coverage != "", lw.line)
	}
	quarantined := ""
	if tests != nil && res.Failed && failReason == "" {
		quarantined = s.quarantine(ctx, info, it.stage, tests, lw.line)
	}
	lw.close()

	fin := run.Event{Type: run.StageFinished, Stage: it.stage, Attempt: it.attempt, Sandbox: res.Sandbox,
		CPUMS: res.CPU.Milliseconds(), MaxRSS: res.MaxRSS}
	var stored []run.Event
	switch {
	case errors.Is(cause, errShutdown), errors.Is(cause, errLeaseLost):
		// Not finished: the stage is re-run as interrupted after the next Start, or by the
		// server that took the run over.
		a.mu.Lock()
		delete(a.cancels, it.stage)
		a.mu.Unlock()
		return
	case cause == nil && !timedOut && errors.Is(err, execute.ErrLost):
		a.mu.Lock()
		defer a.mu.Unlock()
		delete(a.cancels, it.stage)
		if a.lostRetries[it.stage] < s.cfg.LostRetries {
			// A new attempt, on another agent: the lost one may have run some steps.
			a.lostRetries[it.stage]++
			e := run.Event{Type: run.StageInterrupted, Stage: it.stage, Attempt: it.attempt,
				Reason: fmt.Sprintf("agent_lost: %v (re-run %d of %d)", err, a.lostRetries[it.stage], s.cfg.LostRetries)}
			if err := s.appendAdvanceLocked(ctx, a, e); err != nil {
				s.log.Error("cannot record lost agent", "run", a.state.ID, "stage", it.stage, "err", err)
			}
			return
		}
		fin.Status, fin.Reason = run.StatusFailed, fmt.Sprintf("agent_lost: %v (after %d re-runs)", err, s.cfg.LostRetries)
		if err := s.appendAdvanceLocked(ctx, a, fin); err != nil {
			s.log.Error("cannot record stage result", "run", a.state.ID, "stage", it.stage, "err", err)
		}
		return
	case errors.Is(cause, errRunCancelled):
		fin.Status, fin.Reason = run.StatusCancelled, "run cancelled: "+a.cancelReason()
	case timedOut:
		fin.Status, fin.Reason = run.StatusFailed, fmt.Sprintf("timed out after %s", st.Def.Timeout)
	case err != nil:
		fin.Status, fin.Reason = run.StatusFailed, err.Error()
	case res.Failed && failReason != "":
		fin.Status, fin.Reason = run.StatusFailed, failReason
	case res.Failed && quarantined != "":
		fin.Status, fin.Reason = run.StatusSucceeded, quarantined
	case res.Failed:
		code := res.ExitCode
		fin.Status, fin.ExitCode = run.StatusFailed, &code
		fin.Reason = fmt.Sprintf("step %d (%s) exited with code %d", res.FailedStep+1, job.Steps[res.FailedStep].Name, code)
	default:
		fin.Status = run.StatusSucceeded
		if len(res.Artifacts) > 0 {
			arts := runArtifacts(res.Artifacts)
			// Signed before they are recorded: an artifact a later stage or a deployment
			// is given always has its signature and provenance.
			if err := s.attest(ctx, info, it, started, job, arts); err != nil {
				fin.Status, fin.Reason = run.StatusFailed, err.Error()
				break
			}
			// In the same append as the result: a stage never shows succeeded without the
			// artifacts its downstream stages are given.
			stored = append(stored, run.Event{Type: run.ArtifactsStored, Stage: it.stage, Attempt: it.attempt,
				Artifacts: arts})
		}
	}

	if tests != nil {
		// With the result, so the history never has a result without what explains it.
		stored = append(stored, run.Event{Type: run.TestsReported, Stage: it.stage, Attempt: it.attempt, Tests: tests})
	}
	if cov != nil {
		stored = append(stored, run.Event{Type: run.CoverageReported, Stage: it.stage, Attempt: it.attempt, Coverage: cov})
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.cancels, it.stage)
	if m := masker(a.secrets); m != nil {
		fin.Reason = m.Replace(fin.Reason) // an executor's error may quote what a step printed
	}
	if err := s.appendAdvanceLocked(ctx, a, append(stored, fin)...); err != nil {
		s.log.Error("cannot record stage result", "run", a.state.ID, "stage", it.stage, "err", err)
	}
}

// AttestParams is one stage attempt's artifacts, for Config.Attest to sign.
type AttestParams struct {
	Info            *run.Info
	RunID, Stage    string
	Attempt         int
	Started         time.Time
	Finished        time.Time
	Inputs, Outputs []run.Artifact // the upstream artifacts it was given; what it stored
}

// attest hands a succeeded stage's artifacts to Config.Attest.
func (s *Scheduler) attest(ctx context.Context, info *run.Info, it item, started time.Time, job execute.Job, arts []run.Artifact) error {
	if s.cfg.Attest == nil {
		return nil
	}
	err := s.cfg.Attest(ctx, AttestParams{Info: info, RunID: it.runID, Stage: it.stage, Attempt: it.attempt,
		Started: started, Finished: s.cfg.Now().UTC(), Inputs: runArtifacts(job.ArtifactsIn), Outputs: arts})
	if err != nil {
		return fmt.Errorf("sign artifacts: %w", err)
	}
	return nil
}

func (a *active) cancelReason() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state.CancelReason
}

// SecretParams names a secret a stage attempt needs (Config.Secrets).
type SecretParams struct {
	Info         *run.Info
	RunID, Stage string
	// Environment is the environment the stage deploys to, "" when it does not deploy.
	Environment string
	Name        string
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
	var secrets, secretEnv []string
	var missing error
	for _, name := range slices.Sorted(maps.Keys(def.Env)) {
		v := def.Env[name]
		if v.Secret == "" {
			env[name] = v.Value
			continue
		}
		sp := SecretParams{Info: info, RunID: state.ID, Stage: def.Name, Name: v.Secret}
		if def.Deploy != nil {
			sp.Environment = def.Deploy.Environment
		}
		val, err := s.cfg.Secrets(ctx, sp)
		if err != nil {
			missing = errors.Join(missing, fmt.Errorf("secret %s for env %s: %w", v.Secret, name, err))
			continue
		}
		env[name] = val
		secrets = append(secrets, val)
		secretEnv = append(secretEnv, name)
	}
	if s.cfg.StageEnv != nil {
		extra, err := s.cfg.StageEnv(ctx, StageEnvParams{Info: info, RunID: state.ID, Stage: def.Name, Attempt: st.Attempt, Def: def})
		if err != nil {
			missing = errors.Join(missing, fmt.Errorf("stage environment: %w", err))
		}
		for _, name := range slices.Sorted(maps.Keys(extra)) {
			env[name] = extra[name]
			secrets = append(secrets, extra[name])
		}
	}
	job := execute.Job{
		RunID: state.ID, Stage: def.Name, Attempt: st.Attempt, Labels: def.RunsOn,
		Source:    execute.Source{Repo: info.Source.Repo, SHA: info.Source.SHA, Dir: info.Source.Dir},
		Shell:     def.Shell,
		Env:       env,
		Artifacts: def.Artifacts,
		Image:     def.Image, Team: info.Team, SecretEnv: secretEnv,
	}
	if r := def.Resources; r != nil {
		job.Resources = execute.Resources{CPURequest: r.CPU, CPULimit: r.CPULimit, MemoryRequest: r.Memory, MemoryLimit: r.MemoryLimit}
	}
	job.Reports = reportGlobs(def.Reports)
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
				// The pipeline's name tells apart projects that `paved run` all calls "local";
				// the team keeps teams apart when a repo moves to another team (a cache is
				// stage output, which the other team must not read).
				Namespace: info.Team + "\x00" + info.Repo + "\x00" + info.Pipeline.Name + "\x00" + def.Name,
				Key:       prefix, KeyFiles: c.KeyFiles, Paths: c.Paths, RestoreKeys: c.RestoreKeys,
				WriteScope: scopes.Write, ReadScopes: scopes.Read,
			})
		}
	}
	// Every upstream stage succeeded (a stage runs only then), so each has its list; in
	// stage order, so a stage's artifact replaces the same path from one before it.
	for _, up := range info.Pipeline.Upstream(def.Name) {
		if u := state.Stage(up); u != nil {
			for _, a := range u.Artifacts {
				ea, err := execArtifact(a)
				if err != nil {
					missing = errors.Join(missing, fmt.Errorf("artifact %s of stage %s: %w", a.Path, up, err))
					continue
				}
				job.ArtifactsIn = append(job.ArtifactsIn, ea)
			}
		}
	}
	if kindName(def) == "" && len(job.Steps) == 0 {
		missing = errors.Join(missing, fmt.Errorf("stage %q has no steps to run", def.Name))
	}
	return job, secrets, missing
}

// runKind runs a built-in stage with its Kind; its result reads like an executor's.
func (s *Scheduler) runKind(ctx context.Context, name string, info *run.Info, def *pipeline.Stage, job execute.Job, obs *observer) (execute.Result, string, error) {
	k := s.cfg.Kinds[name]
	if k == nil {
		return execute.Result{}, "", fmt.Errorf("stage kind %q is not available in this server (it runs: %s)", name, strings.Join(slices.Sorted(maps.Keys(s.cfg.Kinds)), ", "))
	}
	kr, err := k.Run(ctx, KindJob{
		RunID: job.RunID, Stage: job.Stage, Attempt: job.Attempt,
		Info: info, Def: def, Env: job.Env, ArtifactsIn: job.ArtifactsIn,
	}, kindRecorder{o: obs})
	res := execute.Result{Failed: kr.Failed, Artifacts: kr.Artifacts, Sandbox: "in-process"}
	if kr.Failed && kr.Reason == "" {
		kr.Reason = "stage kind " + name + " failed"
	}
	return res, kr.Reason, err
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
	s       *Scheduler
	a       *active
	ctx     context.Context
	stage   string
	attempt int
	job     *execute.Job
	logs    *logWriter
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

// runArtifacts turns what the executor stored into the event's form.
func runArtifacts(in []execute.Artifact) []run.Artifact {
	out := make([]run.Artifact, 0, len(in))
	for _, a := range in {
		ra := run.Artifact{Path: a.Path, Digest: a.Digest, Size: a.Size, Link: a.Link}
		switch {
		case a.Mode&fs.ModeSymlink != 0:
			ra.Type = run.ArtifactSymlink
		case a.Mode.IsDir():
			ra.Type, ra.Mode = run.ArtifactDir, fmt.Sprintf("%04o", a.Mode.Perm())
		default:
			ra.Type, ra.Mode = run.ArtifactFile, fmt.Sprintf("%04o", a.Mode.Perm())
		}
		out = append(out, ra)
	}
	return out
}

// execArtifact turns a recorded artifact back into what an executor materialises.
func execArtifact(a run.Artifact) (execute.Artifact, error) {
	ea := execute.Artifact{Path: a.Path, Digest: a.Digest, Size: a.Size, Link: a.Link}
	var perm uint64
	if a.Mode != "" {
		var err error
		if perm, err = strconv.ParseUint(a.Mode, 8, 32); err != nil || perm > 0o777 {
			return ea, fmt.Errorf("mode %q is not octal permission bits", a.Mode)
		}
	}
	switch a.Type {
	case run.ArtifactFile:
		ea.Mode = fs.FileMode(perm)
	case run.ArtifactSymlink:
		ea.Mode = fs.ModeSymlink | fs.ModePerm
	case run.ArtifactDir:
		ea.Mode = fs.ModeDir | fs.FileMode(perm)
	default:
		return ea, fmt.Errorf("type %q: want file, symlink or dir", a.Type)
	}
	return ea, nil
}
