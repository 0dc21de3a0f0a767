package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// testEventAppendConflictIsolated: while many runs are appended to at once (the scheduler
// under a burst, where a store may share one transaction among callers), a conflict of one
// run fails that append alone. Each round, every run gets two writers racing for the same
// seq and one with a stale expected seq, all released together: per run exactly one racer
// wins, the stale one conflicts, and the log holds the winner's event.
func testEventAppendConflictIsolated(t *testing.T, h Harness) {
	s := h.Open(t)
	const runs, rounds = 24, 4
	sums := make([]run.Summary, runs)
	for i := range sums {
		sums[i] = createRun(t, s, summary(fmt.Sprintf("run-%02d", i), at(time.Duration(i)*time.Second)))
	}
	for round := range rounds {
		type result struct {
			run, writer int
			err         error
		}
		start := make(chan struct{})
		results := make(chan result, runs*3)
		var wg sync.WaitGroup
		for i := range sums {
			for w := range 3 {
				sum := sums[i]
				if w == 2 {
					sum.LastSeq-- // stale: it read the run one event ago
				}
				e := stageEvent(run.StepStarted)
				e.Reason = fmt.Sprintf("round %d writer %d", round, w)
				p := nextParams(&sum, e)
				wg.Go(func() {
					<-start
					results <- result{i, w, s.EventAppend(t.Context(), p)}
				})
			}
		}
		close(start)
		wg.Wait()
		close(results)
		winners := make([]int, runs)
		for i := range winners {
			winners[i] = -1
		}
		for r := range results {
			switch {
			case r.writer == 2 && !errors.Is(r.err, store.ErrConflict):
				t.Errorf("round %d run %d: the stale append = %v, want ErrConflict", round, r.run, r.err)
			case r.writer == 2:
			case r.err == nil && winners[r.run] >= 0:
				t.Errorf("round %d run %d: writers %d and %d both appended", round, r.run, winners[r.run], r.writer)
			case r.err == nil:
				winners[r.run] = r.writer
			case !errors.Is(r.err, store.ErrConflict):
				t.Errorf("round %d run %d writer %d: %v, want nil or ErrConflict", round, r.run, r.writer, r.err)
			}
		}
		if t.Failed() {
			t.FailNow()
		}
		for i := range sums {
			if winners[i] < 0 {
				t.Fatalf("round %d run %d: no writer won", round, i)
			}
			want := sums[i].LastSeq + 1
			evs := listEvents(t, s, store.EventListParams{RunID: sums[i].ID})
			if got := seqs(evs); !slices.Equal(got, seqRange(1, want)) {
				t.Fatalf("round %d run %d: events %v, want 1..%d", round, i, got, want)
			}
			if got, wantReason := evs[len(evs)-1].Reason, fmt.Sprintf("round %d writer %d", round, winners[i]); got != wantReason {
				t.Fatalf("round %d run %d: the last event is of %q, want the winner's %q", round, i, got, wantReason)
			}
			sums[i].LastSeq = want
			if got, err := s.RunGet(t.Context(), sums[i].ID); err != nil || got.LastSeq != want {
				t.Fatalf("round %d: RunGet(%s) = last seq %d, %v; want %d", round, sums[i].ID, got.LastSeq, err, want)
			}
		}
	}
}

// testWriteCancelledAmongMany: an append or a log batch whose context has ended fails and
// stores nothing, and the writes going on beside it are not disturbed.
func testWriteCancelledAmongMany(t *testing.T, h Harness) {
	s := h.Open(t)
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	const runs = 16
	var wg sync.WaitGroup
	errs := make(chan error, 4*runs)
	for i := range runs {
		wg.Go(func() {
			good := summary(fmt.Sprintf("good-%02d", i), at(time.Duration(i)*time.Second))
			p := nextParams(&good, created(good))
			if err := s.EventAppend(t.Context(), p); err != nil {
				errs <- fmt.Errorf("run %s: %w", good.ID, err)
				return
			}
			if err := s.LogAppend(t.Context(), []run.LogLine{logLine(good.ID, "build", 1, "kept")}); err != nil {
				errs <- fmt.Errorf("logs of run %s: %w", good.ID, err)
			}
			if err := s.LogAppend(cancelled, []run.LogLine{logLine(good.ID, "build", 2, "dropped")}); err == nil {
				errs <- fmt.Errorf("logs of run %s with an ended context: stored", good.ID)
			}
		})
		wg.Go(func() {
			bad := summary(fmt.Sprintf("cancelled-%02d", i), at(time.Duration(i)*time.Second))
			if err := s.EventAppend(cancelled, nextParams(&bad, created(bad))); err == nil {
				errs <- fmt.Errorf("run %s with an ended context: stored", bad.ID)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := range runs {
		if _, err := s.RunGet(t.Context(), fmt.Sprintf("good-%02d", i)); err != nil {
			t.Errorf("good-%02d: %v", i, err)
		}
		if _, err := s.RunGet(t.Context(), fmt.Sprintf("cancelled-%02d", i)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("cancelled-%02d: RunGet = %v, want ErrNotFound", i, err)
		}
		lines := listLogs(t, s, store.LogListParams{RunID: fmt.Sprintf("good-%02d", i), Stage: "build"})
		if len(lines) != 1 || lines[0].Text != "kept" {
			t.Errorf("good-%02d: log %+v, want the one line kept", i, lines)
		}
	}
}
