package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

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
	return s.groupWriteReq(&writeReq{ctx: ctx, lines: lines, rank: rankProgress, wake: make(chan bool, 1)})
}

// maxLogRows bounds the rows of one INSERT of log lines: 5 parameters a row, far below
// SQLite's limit of 32,766, and at most this many statements are kept prepared.
const maxLogRows = 64

// insertLogs writes log lines in as few statements as it can, each of up to maxLogRows
// rows. Why not one statement a line: the logs_fts trigger makes every insert into logs a
// write to the FTS5 index, and FTS5 flushes what it holds in memory to a new segment of
// the index at every statement savepoint, i.e. at every statement of the transaction after
// its first write to the index. One statement a line made a segment a line, and merging
// those segments again took a tenth of the CPU of a burst of runs (bench/RESULTS.md). A
// statement that fails (a line whose run does not exist) writes none of its rows. Only the
// batch's leader calls it, so s.logStmts needs no lock.
func (s *Store) insertLogs(ctx context.Context, tx *sql.Tx, lines []run.LogLine) error {
	for len(lines) > 0 {
		n := min(len(lines), maxLogRows)
		args := make([]any, 0, 5*n)
		for _, l := range lines[:n] {
			args = append(args, l.RunID, l.Stage, l.Seq, formatTime(l.Time), l.Text)
		}
		var err error
		if stmt := s.logStmts[n-1]; stmt != nil { // prepared by prepareLogStmts
			_, err = tx.StmtContext(ctx, stmt).ExecContext(ctx, args...)
		} else {
			// Fewer lines than prepareLogStmts counted: a LogAppend's context ended.
			_, err = tx.ExecContext(ctx, insertLogsSQL(n), args...)
		}
		if err != nil {
			return err
		}
		lines = lines[n:]
	}
	return nil
}

// prepareLogStmts prepares the inserts insertLogs will need for the batch's log lines, before
// its transaction: that holds the one write connection, on which statements are prepared.
func (s *Store) prepareLogStmts(ctx context.Context, batch []*writeReq, linesApart bool) error {
	total := 0
	for _, r := range batch {
		if r.do != nil {
			continue
		}
		if linesApart {
			if err := s.prepareLogChunks(ctx, len(r.lines)); err != nil {
				return err
			}
		}
		total += len(r.lines)
	}
	return s.prepareLogChunks(ctx, total)
}

// prepareLogChunks prepares the inserts of n lines cut in chunks of maxLogRows.
func (s *Store) prepareLogChunks(ctx context.Context, n int) error {
	for _, rows := range []int{min(n, maxLogRows), n % maxLogRows} {
		if rows == 0 || s.logStmts[rows-1] != nil {
			continue
		}
		st, err := s.w.PrepareContext(ctx, insertLogsSQL(rows))
		if err != nil {
			return fmt.Errorf("prepare insert of %d log lines: %w", rows, err)
		}
		s.logStmts[rows-1] = st
	}
	return nil
}

// insertLogsSQL inserts n log lines.
func insertLogsSQL(n int) string {
	return `INSERT OR IGNORE INTO logs (run_id, stage, seq, time, text) VALUES (?, ?, ?, ?, ?)` +
		strings.Repeat(`, (?, ?, ?, ?, ?)`, n-1)
}

// logError is the error of a LogAppend whose lines could not be written: ErrNotFound when
// one names a run that does not exist (OR IGNORE covers the key, not the reference to runs).
func logError(lines []run.LogLine, err error) error {
	if isForeignKeyViolation(err) {
		return fmt.Errorf("sqlite: append logs of run %s: %w", lines[0].RunID, store.ErrNotFound)
	}
	return fmt.Errorf("sqlite: append logs of run %s stage %s: %w", lines[0].RunID, lines[0].Stage, err)
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
