package local_test

import (
	"context"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/execute/local"
)

// floorPerSpawn is what it costs Go to run `sh -c true`: the floor under any executor's
// per-step cost. Measured once per test binary.
var floorPerSpawn = sync.OnceValue(func() time.Duration {
	const n = 300
	start := time.Now()
	for range n {
		if err := exec.Command("sh", "-c", "true").Run(); err != nil {
			panic(err)
		}
	}
	return time.Since(start) / n
})

// BenchmarkStepOverhead runs one stage of b.N `true` steps in each sandbox, so the cost of
// starting the sandbox is spread over many steps and what is left is the per-step cost;
// "floor" spawns `sh -c true` straight from Go. x-floor is the ratio of the two (the
// target is at most 1.5).
//
//	go test ./internal/execute/local -run '^$' -bench StepOverhead -benchtime 2000x
func BenchmarkStepOverhead(b *testing.B) {
	b.Run("floor", func(b *testing.B) {
		for b.Loop() {
			if err := exec.Command("sh", "-c", "true").Run(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/step")
	})
	for _, mode := range sandboxes {
		b.Run(mode, func(b *testing.B) {
			l := newLocal(b, local.Config{Sandbox: mode, Logger: discard})
			job := execute.Job{RunID: "bench", Stage: "steps", Source: execute.Source{Dir: b.TempDir()}}
			job.Steps = make([]execute.Step, b.N)
			for i := range job.Steps {
				job.Steps[i] = execute.Step{Run: "true"}
			}
			floor := floorPerSpawn()
			b.ResetTimer()
			res, err := l.Run(context.Background(), job, countingObserver{})
			if err != nil || res.Failed {
				b.Fatalf("%+v %v", res, err)
			}
			perStep := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(perStep, "ns/step")
			b.ReportMetric(perStep/float64(floor.Nanoseconds()), "x-floor")
		})
	}
}

// BenchmarkStageStart is the fixed cost of a stage: workspace, sandbox, init, one `true`
// step, teardown.
func BenchmarkStageStart(b *testing.B) {
	for _, mode := range sandboxes {
		b.Run(mode, func(b *testing.B) {
			l := newLocal(b, local.Config{Sandbox: mode, Logger: discard})
			job := execute.Job{RunID: "bench", Stage: "start", Source: execute.Source{Dir: b.TempDir()}, Steps: []execute.Step{{Run: "true"}}}
			for b.Loop() {
				if res, err := l.Run(context.Background(), job, countingObserver{}); err != nil || res.Failed {
					b.Fatalf("%+v %v", res, err)
				}
			}
		})
	}
}

type countingObserver struct{}

func (countingObserver) StepStarted(int)                      {}
func (countingObserver) Output(int, []byte)                   {}
func (countingObserver) StepFinished(int, int, time.Duration) {}
func (countingObserver) Cache(execute.CacheReport)            {}
