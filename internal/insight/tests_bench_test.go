package insight_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/paved/paved/internal/insight"
	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/store/sqlite"
)

// BenchmarkQuarantined is what a failing stage with a JUnit report waits for before its
// result is recorded: the stage's test history read from the event log (a SQLite file) and
// judged. The floor is reading the same runs' events and nothing else.
func BenchmarkQuarantined(b *testing.B) {
	for _, n := range []int{100, 1000} {
		ctx := context.Background()
		st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "paved.db"))
		if err != nil {
			b.Fatal(err)
		}
		now := time.Date(2026, 11, 9, 0, 0, 0, 0, time.UTC)
		p := &pipeline.Pipeline{Name: "svc", Stages: []*pipeline.Stage{stage("test", "test", "true")}}
		info := &run.Info{Repo: "a/svc", SHA: "c", Pipeline: p, Trigger: run.Trigger{Kind: "push"}}
		// n runs over the last week, each with 200 test cases; one test fails in every 10th run.
		for i := range n {
			at := now.Add(-time.Duration(n-i) * 7 * 24 * time.Hour / time.Duration(n))
			t := &run.Tests{}
			for c := range 200 {
				status := "passed"
				if c == 0 && i%10 == 0 {
					status = "failed"
				}
				t.Cases = append(t.Cases, run.TestCase{ID: fmt.Sprintf("pkg.Test%03d", c), Status: status, DurationMS: 12})
			}
			id := fmt.Sprintf("run-%05d", i)
			evs := []run.Event{
				{RunID: id, Seq: 1, Type: run.RunCreated, Time: at, Info: info},
				{RunID: id, Seq: 2, Type: run.TestsReported, Time: at, Stage: "test", Attempt: 1, Tests: t},
			}
			sum := run.Summary{ID: id, Repo: "a/svc", SHA: "c", Pipeline: "svc", Trigger: "push", Phase: run.Testing, CreatedAt: at, LastSeq: 2}
			if err := st.EventAppend(ctx, store.EventAppendParams{RunID: id, Events: evs, Summary: sum}); err != nil {
				b.Fatal(err)
			}
		}
		h := &insight.TestHistory{Store: st, Now: func() time.Time { return now }}
		// The attempt asking failed pkg.Test000 (flaky: it failed and passed on commit c).
		current := &run.Tests{Cases: []run.TestCase{{ID: "pkg.Test000", Status: "failed"}, {ID: "pkg.Test001", Status: "passed"}}}
		b.Run(fmt.Sprintf("runs=%d/quarantined", n), func(b *testing.B) {
			for b.Loop() {
				q, err := h.Quarantined(ctx, info, "test", current)
				if err != nil || len(q) != 1 {
					b.Fatalf("%v %v", q, err)
				}
			}
		})
		b.Run(fmt.Sprintf("runs=%d/all-tests", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := h.Tests(ctx, "a/svc", "svc", "test"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("runs=%d/floor-read-events", n), func(b *testing.B) {
			for b.Loop() {
				sums, err := st.RunList(ctx, store.RunListParams{Repo: "a/svc", Limit: insight.MaxRuns})
				if err != nil {
					b.Fatal(err)
				}
				for _, s := range sums {
					if _, err := st.EventList(ctx, store.EventListParams{RunID: s.ID}); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
		st.Close()
	}
}
