package sqlite_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// TestAppendKeepsUnfinishedIndex: appends that leave a run unfinished do not write its done
// column (see updateLiveRunSQL), so the runs listed as unfinished must still follow every
// change of phase, including a finished run that an append makes unfinished again, and a
// conflict must still be told from the run being finished.
func TestAppendKeepsUnfinishedIndex(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "paved.db"))
	ctx := t.Context()
	p := newRun("r1")
	if err := s.EventAppend(ctx, p); err != nil {
		t.Fatal(err)
	}
	unfinished := func() int {
		t.Helper()
		runs, err := s.RunList(ctx, store.RunListParams{Unfinished: true})
		if err != nil {
			t.Fatal(err)
		}
		return len(runs)
	}
	sum := p.Summary
	step := func(phase run.Phase) error {
		sum.LastSeq++
		sum.Phase = phase
		return s.EventAppend(ctx, store.EventAppendParams{RunID: "r1", ExpectedSeq: sum.LastSeq - 1, Summary: sum,
			Events: []run.Event{{RunID: "r1", Seq: sum.LastSeq, Type: run.RunCancelRequested, Time: sum.CreatedAt}}})
	}
	for i, c := range []struct {
		phase      run.Phase
		unfinished int
	}{{run.Building, 1}, {run.Succeeded, 0}, {run.Building, 1}, {run.Testing, 1}, {run.Failed, 0}, {run.Failed, 0}} {
		if err := step(c.phase); err != nil {
			t.Fatalf("append %d (%s): %v", i, c.phase, err)
		}
		if got := unfinished(); got != c.unfinished {
			t.Errorf("after append %d (%s): %d unfinished runs, want %d", i, c.phase, got, c.unfinished)
		}
	}
	for _, phase := range []run.Phase{run.Building, run.Succeeded} {
		stale := p
		stale.ExpectedSeq, stale.Summary.Phase = 1, phase
		stale.Summary.LastSeq, stale.Events = 2, []run.Event{{RunID: "r1", Seq: 2, Type: run.RunCancelRequested, Time: sum.CreatedAt}}
		if err := s.EventAppend(ctx, stale); !errors.Is(err, store.ErrConflict) {
			t.Errorf("stale append (%s) = %v, want ErrConflict", phase, err)
		}
	}
}
