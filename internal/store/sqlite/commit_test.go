package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/store/sqlite"
)

// newRun is the params of a run's RunCreated.
func newRun(id string) store.EventAppendParams {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	info := &run.Info{Repo: "acme/app", Team: "core", Pipeline: &pipeline.Pipeline{Name: "app"}, Trigger: run.Trigger{Kind: "push"}}
	return store.EventAppendParams{
		RunID:  id,
		Events: []run.Event{{RunID: id, Seq: 1, Type: run.RunCreated, Time: now, Info: info}},
		Summary: run.Summary{ID: id, Repo: "acme/app", Team: "core", Pipeline: "app", Trigger: "push",
			Phase: run.Pending, CreatedAt: now, LastSeq: 1},
	}
}

// TestGroupCommitIsolatesWrites queues many writes behind a held write connection, so that
// they share one transaction, and checks that each gets its own result: a conflict, a log
// line of an unknown run, an ended context and a statement that fails halfway (a database
// trigger refuses one run's event after its summary was written, or one LogAppend's second
// line) fail alone, write nothing, and leave every other write of the batch stored.
func TestGroupCommitIsolatesWrites(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "paved.db"))
	ctx := t.Context()
	if err := s.EventAppend(ctx, newRun("existing")); err != nil {
		t.Fatal(err)
	}
	conn := sqlite.HoldWriter(t, s)
	if _, err := conn.ExecContext(ctx, `CREATE TEMP TRIGGER poison BEFORE INSERT ON events
		WHEN NEW.run_id = 'poisoned' BEGIN SELECT RAISE(ABORT, 'poisoned run'); END`); err != nil {
		t.Fatal(err)
	}
	// The batch's log lines are written in one statement: one that fails must fail only its
	// own LogAppend.
	if _, err := conn.ExecContext(ctx, `CREATE TEMP TRIGGER poison_log BEFORE INSERT ON logs
		WHEN NEW.text = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned line'); END`); err != nil {
		t.Fatal(err)
	}

	const good = 40
	cancelCtx, cancel := context.WithCancel(ctx)
	type write struct {
		name string
		do   func() error
	}
	writes := []write{
		{"stale", func() error { return s.EventAppend(ctx, newRun("existing")) }},
		{"poisoned", func() error { return s.EventAppend(ctx, newRun("poisoned")) }},
		{"unknown-logs", func() error {
			return s.LogAppend(ctx, []run.LogLine{{RunID: "no-such-run", Stage: "build", Seq: 1, Text: "lost"}})
		}},
		{"existing-logs", func() error {
			return s.LogAppend(ctx, []run.LogLine{{RunID: "existing", Stage: "build", Seq: 1, Text: "kept"}})
		}},
		{"poisoned-logs", func() error {
			return s.LogAppend(ctx, []run.LogLine{{RunID: "existing", Stage: "test", Seq: 1, Text: "lost"},
				{RunID: "existing", Stage: "test", Seq: 2, Text: "poison"}})
		}},
		{"cancelled", func() error { return s.EventAppend(cancelCtx, newRun("cancelled")) }},
	}
	for i := range good {
		id := fmt.Sprintf("run-%02d", i)
		writes = append(writes, write{id, func() error { return s.EventAppend(ctx, newRun(id)) }})
	}
	errs := make(map[string]error, len(writes))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, w := range writes {
		wg.Go(func() {
			err := w.do()
			mu.Lock()
			errs[w.name] = err
			mu.Unlock()
		})
	}
	// The first write leads and waits for the connection with its batch of one; all the
	// others queue for the next batch.
	deadline := time.Now().Add(10 * time.Second)
	for sqlite.QueuedWrites(s) < len(writes)-1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued after 10s, want %d", sqlite.QueuedWrites(s), len(writes)-1)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	// The trigger is TEMP, of this connection: the one the batch is written on.
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	for name, err := range errs {
		switch name {
		case "stale":
			if !errors.Is(err, store.ErrConflict) {
				t.Errorf("stale append = %v, want ErrConflict", err)
			}
		case "poisoned":
			if err == nil || errors.Is(err, store.ErrConflict) {
				t.Errorf("poisoned append = %v, want the trigger's error", err)
			}
		case "unknown-logs":
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("logs of an unknown run = %v, want ErrNotFound", err)
			}
		case "poisoned-logs":
			if err == nil || errors.Is(err, store.ErrNotFound) {
				t.Errorf("poisoned log lines = %v, want the trigger's error", err)
			}
		case "cancelled":
			if !errors.Is(err, context.Canceled) {
				t.Errorf("append with an ended context = %v, want context.Canceled", err)
			}
		default:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	for _, id := range []string{"poisoned", "cancelled", "no-such-run"} {
		if _, err := s.RunGet(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RunGet(%s) = %v, want ErrNotFound: its half-written append was kept", id, err)
		}
	}
	for i := range good {
		id := fmt.Sprintf("run-%02d", i)
		if sum, err := s.RunGet(ctx, id); err != nil || sum.LastSeq != 1 {
			t.Errorf("RunGet(%s) = %+v, %v", id, sum, err)
		}
	}
	lines, err := s.LogList(ctx, store.LogListParams{RunID: "existing", Stage: "build"})
	if err != nil || len(lines) != 1 || lines[0].Text != "kept" {
		t.Errorf("log of run existing = %+v, %v; want the one line kept", lines, err)
	}
	if lines, err := s.LogList(ctx, store.LogListParams{RunID: "existing", Stage: "test"}); err != nil || len(lines) != 0 {
		t.Errorf("log of the poisoned LogAppend = %+v, %v; want none of its lines", lines, err)
	}
}
