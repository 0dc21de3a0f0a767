package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/store/sqlite"
)

// benchRun appends to one run as the scheduler does: one event at a time, each with the
// run's new summary. A new run is started every 50 events, so the tables grow as in use.
type benchRun struct {
	s      *sqlite.Store
	prefix string
	n      int
	sum    run.Summary
}

func (r *benchRun) append(ctx context.Context, evs ...run.Event) error {
	if r.sum.ID == "" || r.sum.LastSeq >= 50 {
		r.n++
		id := r.prefix + "-" + strconv.Itoa(r.n)
		now := time.Now()
		r.sum = run.Summary{ID: id, Repo: "acme/payments", Team: "payments", Ref: "refs/heads/main",
			SHA: "9fceb02d0ae598e95dc970b74767f19372d61af8", Pipeline: "payments", Trigger: "push",
			Phase: run.Pending, CreatedAt: now}
		created := run.Event{Type: run.RunCreated, Time: now, Info: &run.Info{Repo: "acme/payments", Trigger: run.Trigger{Kind: "push"}}}
		evs = append([]run.Event{created}, evs...)
	}
	p := store.EventAppendParams{RunID: r.sum.ID, ExpectedSeq: r.sum.LastSeq}
	for i, e := range evs {
		e.RunID, e.Seq = r.sum.ID, r.sum.LastSeq+int64(i)+1
		if e.Time.IsZero() {
			e.Time = time.Now()
		}
		p.Events = append(p.Events, e)
	}
	p.Summary = r.sum
	p.Summary.LastSeq += int64(len(evs))
	p.Summary.Phase = run.Building
	if err := r.s.EventAppend(ctx, p); err != nil {
		return err
	}
	r.sum = p.Summary
	return nil
}

var stepEvent = run.Event{Type: run.StepFinished, Stage: "build", Step: 1, ExitCode: new(int), DurationMS: 1234}

func benchStore(b *testing.B, kind string) *sqlite.Store {
	if kind == "memory" {
		return open(b, sqlite.Memory)
	}
	return open(b, filepath.Join(b.TempDir(), "paved.db"))
}

// BenchmarkEventAppend: one event per append, from one goroutine (the latency of an append)
// and from many at once on different runs (the throughput of the single writer).
func BenchmarkEventAppend(b *testing.B) {
	for _, kind := range []string{"file", "memory"} {
		b.Run(kind+"/sequential", func(b *testing.B) {
			s := benchStore(b, kind)
			r := &benchRun{s: s, prefix: "seq"}
			ctx := context.Background()
			for b.Loop() {
				if err := r.append(ctx, stepEvent); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
		b.Run(kind+"/parallel", func(b *testing.B) {
			s := benchStore(b, kind)
			var g atomic.Int64
			ctx := context.Background()
			// As many appenders as runs in the scheduler's default capacity and more.
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				r := &benchRun{s: s, prefix: "par" + strconv.FormatInt(g.Add(1), 10)}
				for pb.Next() {
					if err := r.append(ctx, stepEvent); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkLogAppend: a batch of 50 lines per op, as a busy stage's log writer flushes.
func BenchmarkLogAppend(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "paved.db"))
	ctx := context.Background()
	r := &benchRun{s: s, prefix: "log"}
	if err := r.append(ctx, stepEvent); err != nil {
		b.Fatal(err)
	}
	var seq int64
	lines := make([]run.LogLine, 50)
	for b.Loop() {
		for i := range lines {
			seq++
			lines[i] = run.LogLine{RunID: r.sum.ID, Stage: "build", Seq: seq, Time: time.Now(),
				Text: "ok  \tgithub.com/acme/payments/internal/ledger\t0.412s\tcoverage: 81.3% of statements"}
		}
		if err := s.LogAppend(ctx, lines); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(lines))/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkWorkload is the load the brief names: 200 runs at once, 8 stages each, every
// stage appending its five events one by one and two batches of 25 log lines, while
// readers list a run's events every millisecond each, as API clients would. One op is the
// whole workload. cpu-ms/op is the process's CPU time (user+sys), which unlike the wall
// time does not depend on what else the machine runs; wal-MB is the largest WAL seen at
// the end of an op.
func BenchmarkWorkload(b *testing.B) {
	for _, readers := range []int{0, 4} {
		b.Run("readers="+strconv.Itoa(readers), func(b *testing.B) { workload(b, readers) })
	}
}

func workload(b *testing.B, readers int) {
	const runs, stages, linesPerBatch = 200, 8, 25
	var events, lines atomic.Int64
	var walBytes int64
	cpu0 := cpuTime()
	for b.Loop() {
		b.StopTimer()
		path := filepath.Join(b.TempDir(), "paved.db")
		s := open(b, path)
		ctx := context.Background()
		b.StartTimer()

		stop := make(chan struct{})
		var rg sync.WaitGroup
		for i := range readers {
			rg.Go(func() {
				tick := time.NewTicker(time.Millisecond)
				defer tick.Stop()
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
					id := fmt.Sprintf("w%d-1", (n*readers+i)%runs)
					if _, err := s.EventList(ctx, store.EventListParams{RunID: id}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		var wg sync.WaitGroup
		for i := range runs {
			wg.Go(func() {
				r := &benchRun{s: s, prefix: "w" + strconv.Itoa(i)}
				if err := r.append(ctx, run.Event{Type: run.RunCancelRequested}); err != nil {
					b.Error(err)
					return
				}
				var logSeq int64
				for st := range stages {
					name := "stage-" + strconv.Itoa(st)
					for _, typ := range []run.Type{run.StageQueued, run.StageStarted, run.StepStarted, run.StepFinished, run.StageFinished} {
						if err := r.append(ctx, run.Event{Type: typ, Stage: name, Attempt: 1}); err != nil {
							b.Error(err)
							return
						}
						if typ == run.StepStarted || typ == run.StepFinished {
							batch := make([]run.LogLine, linesPerBatch)
							for j := range batch {
								logSeq++
								batch[j] = run.LogLine{RunID: r.sum.ID, Stage: name, Seq: logSeq, Time: time.Now(),
									Text: "building github.com/acme/payments/internal/ledger"}
							}
							if err := s.LogAppend(ctx, batch); err != nil {
								b.Error(err)
								return
							}
							lines.Add(linesPerBatch)
						}
					}
				}
				events.Add(r.sum.LastSeq)
			})
		}
		wg.Wait()
		close(stop)
		rg.Wait()
		b.StopTimer()
		if fi, err := os.Stat(path + "-wal"); err == nil {
			walBytes = max(walBytes, fi.Size())
		}
		b.StartTimer()
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(events.Load())/float64(b.N), "events/op")
	b.ReportMetric(float64(events.Load())/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(lines.Load())/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric(float64(walBytes)/(1<<20), "wal-MB")
}

// cpuTime is the CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
