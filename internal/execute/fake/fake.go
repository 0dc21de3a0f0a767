// Package fake is a scriptable executor for engine tests: each step's Run is a tiny script
// that sets what the step does, so tests of scheduling, retries, cancellation and recovery
// need no processes. One directive a line:
//
//	echo TEXT         output TEXT and a newline
//	sleep DURATION    wait (Go duration), or until the job's context is done
//	exit N            end the step with exit code N (later lines are not run)
//	infra MESSAGE     fail the whole job as an executor error
//	block             wait until the job's context is done
//	attempt N LINE    run directive LINE only in attempt N of the stage
//
// Each of the job's Caches is reported as a restore miss before the first step and, when
// every step succeeded, as saved after the last: a fake run is always a cold one.
//
// Anything else is an error in the test.
package fake

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/paved/paved/internal/execute"
)

// Executor runs scripted jobs. The zero value is ready; it records every job it got.
type Executor struct {
	mu   sync.Mutex
	jobs []execute.Job
	// Started, if set, receives the job's stage name as each job starts.
	Started chan string
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
	for i, c := range job.Caches {
		obs.Cache(execute.CacheReport{Op: "restore", Index: i, Key: c.Key + "-fake", Status: "miss"})
	}
	for i, step := range job.Steps {
		obs.StepStarted(i)
		start := time.Now()
		code, err := play(ctx, job.Attempt, step.Run, func(s string) { obs.Output(i, []byte(s+"\n")) })
		if err != nil {
			return res, err
		}
		obs.StepFinished(i, code, time.Since(start))
		if code != 0 {
			res.Failed, res.FailedStep, res.ExitCode = true, i, code
			return res, nil
		}
	}
	for i, c := range job.Caches {
		obs.Cache(execute.CacheReport{Op: "save", Index: i, Key: c.Key + "-fake", Status: "saved", Scope: c.WriteScope})
	}
	return res, nil
}

func play(ctx context.Context, attempt int, script string, out func(string)) (int, error) {
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
		default:
			return 0, fmt.Errorf("fake: unknown directive %q", verb)
		}
	}
	return 0, nil
}
