package sqlite

import (
	"context"
	"errors"
	"fmt"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// LogAppend stores log lines, of any runs and stages, in one transaction. A line whose
// (run, stage, seq) is already stored is skipped, so a batch retried after a crash or a
// timeout is stored once. Lines of a run that does not exist are an error wrapping
// store.ErrNotFound, and then none of the batch is stored.
func (s *Store) LogAppend(ctx context.Context, lines []run.LogLine) error {
	if len(lines) == 0 {
		return nil
	}
	for _, l := range lines {
		switch {
		case l.RunID == "" || l.Stage == "":
			return fmt.Errorf("sqlite: append logs: line %d of run %q stage %q: run and stage are required", l.Seq, l.RunID, l.Stage)
		case l.Seq < 1:
			return fmt.Errorf("sqlite: append logs of run %s stage %s: seq %d, want 1 or more", l.RunID, l.Stage, l.Seq)
		}
	}
	// In the group commit with the events: a stage's log lines would otherwise take the one
	// write connection between two batches of events.
	return s.groupWrite(ctx, false, func(ctx context.Context, st *batchStmts) (refused, err error) {
		for _, l := range lines {
			if _, err := st.insertLog.ExecContext(ctx, l.RunID, l.Stage, l.Seq, formatTime(l.Time), l.Text); err != nil {
				// OR IGNORE covers the key, not the reference to runs.
				if isForeignKeyViolation(err) {
					return nil, fmt.Errorf("sqlite: append logs of run %s: %w", l.RunID, store.ErrNotFound)
				}
				return nil, fmt.Errorf("sqlite: append logs of run %s stage %s: line %d: %w", l.RunID, l.Stage, l.Seq, err)
			}
		}
		return nil, nil
	})
}

// LogList returns a stage's log lines after p.AfterSeq, in order.
func (s *Store) LogList(ctx context.Context, p store.LogListParams) ([]run.LogLine, error) {
	n, err := limit(p.Limit, -1)
	if err != nil {
		return nil, err
	}
	if p.RunID == "" || p.Stage == "" {
		return nil, errors.New("sqlite: list logs: run and stage are required")
	}
	rows, err := s.r.QueryContext(ctx,
		`SELECT seq, time, text FROM logs WHERE run_id = ? AND stage = ? AND seq > ? ORDER BY seq LIMIT ?`,
		p.RunID, p.Stage, p.AfterSeq, n)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list logs of run %s stage %s: %w", p.RunID, p.Stage, err)
	}
	defer rows.Close()
	lines := []run.LogLine{}
	var t string
	for rows.Next() {
		l := run.LogLine{RunID: p.RunID, Stage: p.Stage}
		if err := rows.Scan(&l.Seq, &t, &l.Text); err != nil {
			return nil, fmt.Errorf("sqlite: list logs of run %s stage %s: %w", p.RunID, p.Stage, err)
		}
		if l.Time, err = parseTime(t); err != nil {
			return nil, fmt.Errorf("sqlite: list logs of run %s stage %s: %w", p.RunID, p.Stage, err)
		}
		lines = append(lines, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list logs of run %s stage %s: %w", p.RunID, p.Stage, err)
	}
	return lines, nil
}
