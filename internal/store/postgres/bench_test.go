package postgres_test

import (
	"context"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/store/postgres"
	"github.com/paved/paved/internal/store/postgres/pgtest"
	"github.com/paved/paved/internal/store/sqlite"
)

// appender is the one method the benchmark compares.
type appender interface {
	EventAppend(ctx context.Context, p store.EventAppendParams) error
}

// benchRun appends to one run as the scheduler does: one event at a time, each with the
// run's new summary. A new run is started every 50 events, so the tables grow as in use.
// (The same workload as the SQLite store's own BenchmarkEventAppend.)
type benchRun struct {
	s      appender
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

// BenchmarkEventAppend compares one-event appends on both stores: from one goroutine (the
// latency of an append) and from 8 at once on different runs (throughput under the
// scheduler's concurrency). The stores:
//
//   - sqlite: the embedded default, a file in WAL mode with synchronous=NORMAL (no fsync
//     at commit).
//   - postgres-nosync: PostgreSQL with fsync and synchronous_commit off (the test server),
//     the closest to SQLite's setting: what the store itself costs.
//   - postgres-durable: PostgreSQL as configured by default, every commit waits for the
//     WAL flush (commits of concurrent sessions share flushes).
//
// floor is the least any PostgreSQL append can cost: a SELECT 1 round trip on a
// connection of the same server, measured in the same run.
func BenchmarkEventAppend(b *testing.B) {
	durable := pgtest.ForTest(b, pgtest.Config{Durable: true})
	stores := []struct {
		name string
		open func(b *testing.B) appender
	}{
		{"sqlite", func(b *testing.B) appender { return openSQLite(b) }},
		{"postgres-nosync", func(b *testing.B) appender { return open(b, pgtest.DSN(b)) }},
		{"postgres-durable", func(b *testing.B) appender { return open(b, durable.NewDatabase(b)) }},
	}
	for _, st := range stores {
		b.Run(st.name+"/sequential", func(b *testing.B) {
			r := &benchRun{s: st.open(b), prefix: "seq"}
			ctx := context.Background()
			for b.Loop() {
				if err := r.append(ctx, stepEvent); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
		b.Run(st.name+"/parallel", func(b *testing.B) {
			s := st.open(b)
			var g atomic.Int64
			ctx := context.Background()
			// 8 appenders on 2 cores: GOMAXPROCS × 4.
			b.SetParallelism(4)
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
	b.Run("floor/postgres-select1", func(b *testing.B) {
		conn, err := pgx.Connect(b.Context(), pgtest.DSN(b))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(context.Background())
		var one int
		for b.Loop() {
			if err := conn.QueryRow(b.Context(), `SELECT 1`).Scan(&one); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func openSQLite(b *testing.B) *sqlite.Store {
	s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "paved.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

var _ appender = (*postgres.Store)(nil)
