// Command queue measures the scheduler alone: N concurrent runs of an 8-stage no-op DAG
// through schedule.Scheduler on a real store (SQLite, a file in WAL mode; or PostgreSQL,
// with -database) with the scripted fake executor, so that no process is spawned and what
// is measured is scheduling and the event log. It reports stage transitions per second
// (StageQueued, StageStarted, StageFinished appended), the time from Create being called to
// the run's first StageStarted (p50, p99, max), the process's CPU time and its peak RSS.
//
// With -servers N (N > 1) or -leases, the runs are spread over N schedulers sharing the
// store with run leases, as N paved servers on one PostgreSQL: each Create takes a lease,
// each finished run releases it, and every scheduler renews its own.
//
// Usage: go run ./bench/queue [-runs 1000] [-capacity 1000] [-creators 32] [-database postgres] [-servers 3]
// It prints a Markdown section for bench/RESULTS.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/paved/paved/internal/execute/fake"
	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/schedule"
	"github.com/paved/paved/internal/store/postgres"
	"github.com/paved/paved/internal/store/postgres/pgtest"
	"github.com/paved/paved/internal/store/sqlite"
)

func main() {
	runs := flag.Int("runs", 1000, "concurrent runs")
	capacity := flag.Int("capacity", 1000, "stages that run at once")
	creators := flag.Int("creators", 32, "goroutines creating runs (triggers arriving at once)")
	teams := flag.Int("teams", 4, "teams the runs are spread over (fair share is exercised)")
	step := flag.String("step", "", `each stage's fake step script, e.g. "sleep 1s" to keep runs in flight; "": a no-op`)
	rate := flag.Float64("rate", 0, "triggers per second; 0: all at once, as fast as the creators go")
	database := flag.String("database", "", `the store: "" SQLite (a file, the default); "postgres": a throwaway PostgreSQL `+
		`(fsync off); "postgres-durable": the same, fsync on; or a postgres:// URL`)
	servers := flag.Int("servers", 1, "schedulers sharing the store with run leases (capacity each); 1 without -leases: no leases")
	leases := flag.Bool("leases", false, "give the scheduler run leases even when -servers is 1")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the measured part to this file")
	memProfile := flag.String("memprofile", "", "write an allocation profile to this file at the end")
	traceFile := flag.String("trace", "", "write an execution trace (go tool trace) of the measured part to this file")
	flag.Parse()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "paved-bench-queue-")
	check(err)
	defer os.RemoveAll(dir)
	st, err := openStore(ctx, *database, dir)
	check(err)
	defer st.Close()

	var (
		mu         sync.Mutex
		created    = map[string]time.Time{} // run → Create called
		firstStart = map[string]time.Duration{}
		// The phases of a trigger's wait for its first stage, to find where the tail is.
		// durable: RunCreated (with the first StageQueued) committed; stamped: StageStarted
		// folded in, just before its append (the stage was dispatched and its job built).
		durable     = map[string]time.Time{}
		stamped     = map[string]time.Time{}
		transitions atomic.Int64
		finished    atomic.Int64
		inFlight    atomic.Int64
		peak        atomic.Int64
		allDone     = make(chan struct{})
	)
	ids := make(chan string, *runs)
	onEvent := func(e run.Event) {
		switch e.Type {
		case run.StageQueued, run.StageFinished:
			transitions.Add(1)
		case run.StageStarted:
			transitions.Add(1)
			now := time.Now()
			mu.Lock()
			if _, ok := firstStart[e.RunID]; !ok {
				if t0, ok := created[e.RunID]; ok {
					firstStart[e.RunID] = now.Sub(t0)
					stamped[e.RunID] = e.Time
				}
			}
			mu.Unlock()
		case run.RunCreated:
			now := time.Now()
			mu.Lock()
			durable[e.RunID] = now
			mu.Unlock()
			n := inFlight.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
		case run.RunFinished:
			inFlight.Add(-1)
			if finished.Add(1) == int64(*runs) {
				close(allDone)
			}
		}
	}
	var scheds []*schedule.Scheduler
	for i := range max(*servers, 1) {
		cfg := schedule.Config{
			Capacity: *capacity, OnEvent: onEvent,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		}
		if *servers > 1 || *leases {
			ls, ok := st.(schedule.Leases)
			if !ok {
				check(fmt.Errorf("the store has no leases"))
			}
			cfg.Leases, cfg.Owner = ls, fmt.Sprintf("bench-%d", i)
		}
		sched, err := schedule.New(cfg, st, &fake.Executor{})
		check(err)
		check(sched.Start(ctx))
		defer sched.Stop()
		scheds = append(scheds, sched)
	}

	p := dag(*step)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		check(err)
		check(pprof.StartCPUProfile(f))
		defer f.Close()
	}
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		check(err)
		check(trace.Start(f))
		defer f.Close()
	}
	var ms runtime.MemStats
	if *memProfile != "" {
		runtime.MemProfileRate = 64 << 10
	}
	runtime.ReadMemStats(&ms)
	gc0, pause0, alloc0 := ms.NumGC, ms.PauseTotalNs, ms.TotalAlloc
	cpu0 := cpuTime()
	start := time.Now()
	// Slots taken and stages waiting for one, sampled: whether capacity was free.
	var peakRunning, peakQueued atomic.Int64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-allDone:
				return
			case <-t.C:
			}
			var r, q int
			for _, sc := range scheds {
				st := sc.Stats()
				r, q = r+st.Running, q+st.QueuedTotal()
			}
			peakRunning.Store(max(peakRunning.Load(), int64(r)))
			peakQueued.Store(max(peakQueued.Load(), int64(q)))
		}
	}()
	var wg sync.WaitGroup
	var next atomic.Int64
	var tick <-chan time.Time
	if *rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / *rate))
		defer t.Stop()
		tick = t.C
	}
	for range *creators {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if tick != nil {
					<-tick
				}
				i := next.Add(1) - 1
				if i >= int64(*runs) {
					return
				}
				id := fmt.Sprintf("bench-%05d", i)
				mu.Lock()
				created[id] = time.Now()
				mu.Unlock()
				_, err := scheds[int(i)%len(scheds)].Create(ctx, schedule.CreateParams{ID: id, Info: run.Info{
					Repo: "bench/app", Team: fmt.Sprintf("team-%d", i%int64(*teams)),
					Trigger: run.Trigger{Kind: "push", Branch: "main"}, Pipeline: p,
				}})
				check(err)
				ids <- id
			}
		}()
	}
	wg.Wait()
	<-allDone
	<-sampled
	took := time.Since(start)
	cpu := cpuTime() - cpu0
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if *traceFile != "" {
		trace.Stop()
	}
	if *memProfile != "" {
		f, err := os.Create(*memProfile)
		check(err)
		check(pprof.Lookup("allocs").WriteTo(f, 0))
		check(f.Close())
	}
	runtime.ReadMemStats(&ms)

	var lat []time.Duration
	for _, d := range firstStart {
		lat = append(lat, d)
	}
	slices.Sort(lat)
	pct := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	fmt.Printf("## Scheduler under load (`bench/queue`) — %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Printf("Machine: %s/%s, %d CPUs. Command: `go run ./bench/queue -runs %d -capacity %d -creators %d -teams %d -rate %g -step %q -database %q -servers %d -leases=%v`\n\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), *runs, *capacity, *creators, *teams, *rate, *step, *database, *servers, *leases)
	fmt.Printf("| measure | value |\n|---|---|\n")
	fmt.Printf("| runs × stages | %d × 8 = %d stages, all succeeded: %v |\n", *runs, *runs*8, finished.Load() == int64(*runs))
	fmt.Printf("| wall time | %s |\n", took.Round(time.Millisecond))
	fmt.Printf("| stage transitions/s (queued, started, finished) | %.0f (%d in all) |\n", float64(transitions.Load())/took.Seconds(), transitions.Load())
	fmt.Printf("| stages/s | %.0f |\n", float64(*runs*8)/took.Seconds())
	fmt.Printf("| trigger → first stage started p50 / p99 / max | %s / %s / %s |\n",
		pct(0.50).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond))
	phase := func(from, to func(id string) time.Time) string {
		var d []time.Duration
		for id := range firstStart {
			d = append(d, to(id).Sub(from(id)))
		}
		slices.Sort(d)
		q := func(q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
		return fmt.Sprintf("%s / %s / %s", q(0.5).Round(10*time.Microsecond), q(0.99).Round(10*time.Microsecond), d[len(d)-1].Round(10*time.Microsecond))
	}
	at := func(m map[string]time.Time) func(string) time.Time { return func(id string) time.Time { return m[id] } }
	startedAt := func(id string) time.Time { return created[id].Add(firstStart[id]) }
	fmt.Printf("| … Create called → RunCreated durable | %s |\n", phase(at(created), at(durable)))
	fmt.Printf("| … RunCreated durable → StageStarted stamped (dispatch, job) | %s |\n", phase(at(durable), at(stamped)))
	fmt.Printf("| … StageStarted stamped → durable | %s |\n", phase(at(stamped), startedAt))
	fmt.Printf("| GC cycles, total pause, allocated | %d, %s, %d MB |\n", ms.NumGC-gc0,
		time.Duration(ms.PauseTotalNs-pause0).Round(10*time.Microsecond), (ms.TotalAlloc-alloc0)>>20)
	fmt.Printf("| CPU time (user+sys; unlike wall time, not stretched by other load) | %s |\n", cpu.Round(10*time.Millisecond))
	fmt.Printf("| peak RSS | %s |\n", peakRSS())
	fmt.Printf("| peak runs in flight | %d |\n", peak.Load())
	fmt.Printf("| peak slots taken, stages waiting for one (sampled every 2 ms) | %d of %d, %d |\n", peakRunning.Load(), *capacity*len(scheds), peakQueued.Load())
}

// dag is the 8-stage no-op DAG of the server benchmark: a fan-out, a fan-in, a tail.
func dag(script string) *pipeline.Pipeline {
	p := &pipeline.Pipeline{Name: "bench"}
	for _, d := range [][2]string{{"a", ""}, {"b", "a"}, {"c", "a"}, {"d", "b"}, {"e", "b"}, {"f", "c"}, {"g", "d,e,f"}, {"h", "g"}} {
		st := &pipeline.Stage{Name: d[0], Base: d[0], Shell: "sh", Phase: "build", Timeout: time.Minute,
			Steps: []pipeline.Step{{Name: "noop", Run: script}}}
		if d[1] != "" {
			st.Needs = strings.Split(d[1], ",")
		}
		p.Stages = append(p.Stages, st)
	}
	return p
}

func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:"))
		}
	}
	return "unknown"
}

type benchStore interface {
	schedule.Store
	Close() error
}

var (
	_ schedule.Leases = (*sqlite.Store)(nil)
	_ schedule.Leases = (*postgres.Store)(nil)
)

// openStore opens the store -database names; a throwaway PostgreSQL is stopped by Close.
func openStore(ctx context.Context, database, dir string) (benchStore, error) {
	switch database {
	case "":
		return sqlite.Open(ctx, filepath.Join(dir, "paved.db"))
	case "postgres", "postgres-durable":
		srv, err := pgtest.Start(ctx, pgtest.Config{Durable: database == "postgres-durable"})
		if err != nil {
			return nil, err
		}
		dsn, err := srv.CreateDatabase(ctx)
		if err != nil {
			srv.Stop()
			return nil, err
		}
		st, err := postgres.Open(ctx, dsn) // the server's pool size, not one tuned for this

		if err != nil {
			srv.Stop()
			return nil, err
		}
		return &throwaway{Store: st, srv: srv}, nil
	}
	return postgres.Open(ctx, database)
}

// throwaway is a store on a server of its own.
type throwaway struct {
	*postgres.Store
	srv *pgtest.Server
}

func (t *throwaway) Close() error {
	err := t.Store.Close()
	t.srv.Stop()
	return err
}

// cpuTime is the CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/queue:", err)
		os.Exit(1)
	}
}
