package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// LogAppend stores log lines, of any runs and stages, in one statement. A line whose
// (run, stage, seq) is already stored is skipped, so a batch retried after a crash or a
// timeout is stored once; within a batch the first of two such lines is kept. Lines of a
// run that does not exist are an error wrapping store.ErrNotFound, and then none of the
// batch is stored. The text is kept byte for byte, valid UTF-8 or not.
func (s *Store) LogAppend(ctx context.Context, lines []run.LogLine) error {
	if len(lines) == 0 {
		return nil
	}
	type key struct {
		run, stage string
		seq        int64
	}
	seen := make(map[key]bool, len(lines))
	var (
		runs, stages []string
		seqs         []int64
		times        []*int64
		texts        [][]byte
	)
	for _, l := range lines {
		switch {
		case l.RunID == "" || l.Stage == "":
			return fmt.Errorf("postgres: append logs: line %d of run %q stage %q: run and stage are required", l.Seq, l.RunID, l.Stage)
		case l.Seq < 1:
			return fmt.Errorf("postgres: append logs of run %s stage %s: seq %d, want 1 or more", l.RunID, l.Stage, l.Seq)
		}
		k := key{l.RunID, l.Stage, l.Seq}
		if seen[k] {
			continue
		}
		seen[k] = true
		var t *int64
		if !l.Time.IsZero() {
			ns := l.Time.UnixNano()
			t = &ns
		}
		runs, stages, seqs, times, texts = append(runs, l.RunID), append(stages, l.Stage), append(seqs, l.Seq),
			append(times, t), append(texts, []byte(l.Text))
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO logs (run_id, stage, seq, time, text)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bytea[])
		ON CONFLICT DO NOTHING`, runs, stages, seqs, times, texts)
	if sqlState(err) == foreignKeyViolation {
		return fmt.Errorf("postgres: append logs: a line's run does not exist: %w", store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("postgres: append logs: %w", err)
	}
	return nil
}

// LogList returns a stage's log lines after p.AfterSeq, in order.
func (s *Store) LogList(ctx context.Context, p store.LogListParams) ([]run.LogLine, error) {
	n, err := limit(p.Limit, -1)
	if err != nil {
		return nil, err
	}
	if p.RunID == "" || p.Stage == "" {
		return nil, errors.New("postgres: list logs: run and stage are required")
	}
	rows, err := s.pool.Query(ctx,
		`SELECT seq, time, text FROM logs WHERE run_id = $1 AND stage = $2 AND seq > $3 ORDER BY seq LIMIT $4`,
		p.RunID, p.Stage, p.AfterSeq, n)
	if err != nil {
		return nil, fmt.Errorf("postgres: list logs of run %s stage %s: %w", p.RunID, p.Stage, err)
	}
	defer rows.Close()
	lines := []run.LogLine{}
	var (
		t    *int64
		text []byte
	)
	for rows.Next() {
		l := run.LogLine{RunID: p.RunID, Stage: p.Stage}
		if err := rows.Scan(&l.Seq, &t, &text); err != nil {
			return nil, fmt.Errorf("postgres: list logs of run %s stage %s: %w", p.RunID, p.Stage, err)
		}
		l.Time, l.Text = fromNanos(t), string(text)
		lines = append(lines, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list logs of run %s stage %s: %w", p.RunID, p.Stage, err)
	}
	return lines, nil
}
