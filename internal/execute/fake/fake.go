// Package fake is a scriptable executor for engine tests: each step's Run is a tiny script
// that sets what the step does, so tests of scheduling, retries, cancellation and recovery
// need no processes. One directive a line:
//
//	echo TEXT         output TEXT and a newline
//	sleep DURATION    wait (Go duration), or until the job's context is done
//	exit N            end the step with exit code N (later lines are not run)
//	infra MESSAGE     fail the whole job as an executor error
//	block             wait until the job's context is done
//	gate NAME         wait until the test calls Open(NAME), or the job's context is done
//	attempt N LINE    run directive LINE only in attempt N of the stage
//	artifact PATH TEXT  the step wrote TEXT to the file PATH (relative to the workspace)
//	use CPU RSS       the step's processes used CPU (Go duration) of CPU time and up to RSS
//	                  bytes of memory: summed and maxed over the steps into Result.CPU, MaxRSS
//
// When every step succeeded, the files written with artifact that the job's Artifacts globs
// match are reported in Result.Artifacts, as the local executor reports what it stored:
// digest and size of TEXT, mode 0644, sorted by path. A glob that matches none of them
// fails the job with an error wrapping execute.ErrArtifactMissing. No blob is stored: the
// job's ArtifactsIn are only recorded (Jobs), for tests to check what a stage was given.
//
// The job's Reports globs are matched against the files written with artifact after the
// steps, also when a step failed, and reported in Result.Reports with TEXT as their bytes
// (a report's XML fits on one line); a glob that matches none is said in ReportsNote.
//
// Each of the job's Caches is reported as a restore miss before the first step and, when
// every step succeeded, as saved after the last: a fake run is always a cold one.
//
// Anything else is an error in the test.
package fake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/paved/paved/internal/execute"
)

// Executor runs scripted jobs. The zero value is ready; it records every job it got.
type Executor struct {
	mu   sync.Mutex
	jobs []execute.Job
	// Started, if set, receives the job's stage name as each job starts.
	Started chan string
	gates   map[string]chan struct{}
}

func (e *Executor) gate(name string) chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.gates == nil {
		e.gates = map[string]chan struct{}{}
	}
	g, ok := e.gates[name]
	if !ok {
		g = make(chan struct{})
		e.gates[name] = g
	}
	return g
}

// Open lets every step waiting at gate NAME, now or later, go on.
func (e *Executor) Open(name string) {
	g := e.gate(name)
	e.mu.Lock()
	defer e.mu.Unlock()
	select {
	case <-g:
	default:
		close(g)
	}
}

var _ execute.Executor = (*Executor)(nil)

// Jobs returns the jobs run so far, in the order they started.
func (e *Executor) Jobs() []execute.Job {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]execute.Job(nil), e.jobs...)
}

// Run plays each step's script.
func (e *Executor) Run(ctx context.Context, job execute.Job, obs execute.Observer) (execute.Result, error) {
	e.mu.Lock()
	e.jobs = append(e.jobs, job)
	e.mu.Unlock()
	if e.Started != nil {
		select {
		case e.Started <- job.Stage:
		case <-ctx.Done():
			return execute.Result{}, ctx.Err()
		}
	}
	res := execute.Result{Sandbox: "fake"}
	written := map[string]execute.Artifact{}
	texts := map[string]string{}
	write := func(path, text string) {
		texts[path] = text
		sum := sha256.Sum256([]byte(text))
		written[path] = execute.Artifact{Path: path, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(text)), Mode: 0o644}
	}
	for i, c := range job.Caches {
		obs.Cache(execute.CacheReport{Op: "restore", Index: i, Key: c.Key + "-fake", Status: "miss"})
	}
	for i, step := range job.Steps {
		obs.StepStarted(i)
		start := time.Now()
		code, err := play(ctx, job.Attempt, step.Run, func(s string) { obs.Output(i, []byte(s+"\n")) }, write, e.gate, &res)
		if err != nil {
			return res, err
		}
		obs.StepFinished(i, code, time.Since(start))
		if code != 0 {
			res.Failed, res.FailedStep, res.ExitCode = true, i, code
			res.Reports, res.ReportsNote = matchReports(job.Reports, texts)
			return res, nil
		}
	}
	res.Reports, res.ReportsNote = matchReports(job.Reports, texts)
	arts, err := matchArtifacts(job.Artifacts, written)
	if err != nil {
		return res, err
	}
	res.Artifacts = arts
	for i, c := range job.Caches {
		obs.Cache(execute.CacheReport{Op: "save", Index: i, Key: c.Key + "-fake", Status: "saved", Scope: c.WriteScope})
	}
	return res, nil
}

// matchArtifacts lists what the globs match of what the steps wrote.
func matchArtifacts(globs []string, written map[string]execute.Artifact) ([]execute.Artifact, error) {
	var out []execute.Artifact
	for _, g := range globs {
		pattern := path.Clean(strings.TrimPrefix(g, "./"))
		matched := false
		for _, p := range slices.Sorted(maps.Keys(written)) {
			if ok, _ := doublestar.Match(pattern, p); ok {
				matched = true
				if !slices.ContainsFunc(out, func(a execute.Artifact) bool { return a.Path == p }) {
					out = append(out, written[p])
				}
			}
		}
		if !matched {
			return nil, fmt.Errorf("fake: artifact %q matched nothing in the workspace: %w", g, execute.ErrArtifactMissing)
		}
	}
	slices.SortFunc(out, func(a, b execute.Artifact) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// matchReports returns what the report globs match of what the steps wrote, sorted by path.
func matchReports(globs []string, texts map[string]string) ([]execute.Report, string) {
	var out []execute.Report
	var notes []string
	for _, g := range globs {
		pattern := path.Clean(strings.TrimPrefix(g, "./"))
		matched := false
		for _, p := range slices.Sorted(maps.Keys(texts)) {
			if ok, _ := doublestar.Match(pattern, p); ok {
				matched = true
				if !slices.ContainsFunc(out, func(r execute.Report) bool { return r.Path == p }) {
					out = append(out, execute.Report{Path: p, Data: []byte(texts[p])})
				}
			}
		}
		if !matched {
			notes = append(notes, fmt.Sprintf("report %q matched nothing in the workspace", g))
		}
	}
	slices.SortFunc(out, func(a, b execute.Report) int { return strings.Compare(a.Path, b.Path) })
	return out, strings.Join(notes, "; ")
}

func play(ctx context.Context, attempt int, script string, out func(string), write func(path, text string), gate func(string) chan struct{}, res *execute.Result) (int, error) {
	for _, line := range strings.Split(script, "\n") {
		verb, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
		if verb == "attempt" {
			n, rest, _ := strings.Cut(arg, " ")
			if n != strconv.Itoa(attempt) {
				continue
			}
			verb, arg, _ = strings.Cut(rest, " ")
		}
		switch verb {
		case "":
		case "echo":
			out(arg)
		case "sleep":
			d, err := time.ParseDuration(arg)
			if err != nil {
				return 0, fmt.Errorf("fake: sleep %q: %w", arg, err)
			}
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return 0, fmt.Errorf("fake: %w", ctx.Err())
			}
		case "gate":
			select {
			case <-gate(arg):
			case <-ctx.Done():
				return 0, fmt.Errorf("fake: %w", ctx.Err())
			}
		case "block":
			<-ctx.Done()
			return 0, fmt.Errorf("fake: %w", ctx.Err())
		case "exit":
			n, err := strconv.Atoi(arg)
			if err != nil {
				return 0, fmt.Errorf("fake: exit %q: %w", arg, err)
			}
			return n, nil
		case "infra":
			return 0, errors.New(arg)
		case "use":
			c, r, _ := strings.Cut(arg, " ")
			cpu, err := time.ParseDuration(c)
			if err != nil {
				return 0, fmt.Errorf("fake: use %q: %w", arg, err)
			}
			rss, err := strconv.ParseInt(r, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("fake: use %q: %w", arg, err)
			}
			res.CPU += cpu
			res.MaxRSS = max(res.MaxRSS, rss)
		case "artifact":
			p, text, _ := strings.Cut(arg, " ")
			if p == "" {
				return 0, errors.New("fake: artifact needs a path")
			}
			write(p, text)
		default:
			return 0, fmt.Errorf("fake: unknown directive %q", verb)
		}
	}
	return 0, nil
}
