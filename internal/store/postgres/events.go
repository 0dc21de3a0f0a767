package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// An append is one statement, so one round trip and atomic without a transaction of its
// own: a data-modifying CTE writes the run row, and the events are inserted only for the
// row it returns. For a run that exists the CTE is an UPDATE guarded by last_seq: a
// concurrent append holding the row makes it wait, and then, the row having changed under
// READ COMMITTED, it updates nothing, and so inserts nothing. For a new run it is an
// INSERT that does nothing if the id exists. Either way "no rows" is a conflict.

// createRunSQL appends the first events of a run that must not exist yet.
const createRunSQL = `WITH r AS (
	INSERT INTO runs (id, repo, team, ref, sha, pipeline, "trigger", phase, done, created_at, finished_at, last_seq)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
	ON CONFLICT (id) DO NOTHING
	RETURNING id
)
INSERT INTO events (run_id, seq, type, time, data)
SELECT r.id, e.seq, e.type, e.time, e.data::json
FROM r, unnest($13::bigint[], $14::text[], $15::bigint[], $16::text[]) AS e (seq, type, time, data)`

// appendRunSQL appends to a run whose last seq must be $5. Only what events can change is
// set: the rest comes from RunCreated and never changes.
const appendRunSQL = `WITH r AS (
	UPDATE runs SET phase = $2, done = $3, finished_at = $4, last_seq = $6
	WHERE id = $1 AND last_seq = $5
	RETURNING id
)
INSERT INTO events (run_id, seq, type, time, data)
SELECT r.id, e.seq, e.type, e.time, e.data::json
FROM r, unnest($7::bigint[], $8::text[], $9::bigint[], $10::text[]) AS e (seq, type, time, data)`

const runColumns = `id, repo, team, ref, sha, pipeline, "trigger", phase, created_at, finished_at, last_seq`

// EventAppend appends p.Events to run p.RunID and writes p.Summary as its projection,
// atomically, if the run's last seq is still p.ExpectedSeq; otherwise it returns an error
// wrapping store.ErrConflict and writes nothing.
func (s *Store) EventAppend(ctx context.Context, p store.EventAppendParams) error {
	if err := checkAppend(p); err != nil {
		return err
	}
	n := len(p.Events)
	seqs, types, times, data := make([]int64, n), make([]string, n), make([]int64, n), make([]string, n)
	for i, e := range p.Events {
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("postgres: append to run %s: encode event %d: %w", p.RunID, e.Seq, err)
		}
		seqs[i], types[i], times[i], data[i] = e.Seq, string(e.Type), e.Time.UnixNano(), string(b)
	}
	sum := p.Summary
	var (
		tag interface{ RowsAffected() int64 }
		err error
	)
	if p.ExpectedSeq == 0 {
		tag, err = s.pool.Exec(ctx, createRunSQL,
			sum.ID, sum.Repo, sum.Team, sum.Ref, sum.SHA, sum.Pipeline, sum.Trigger, string(sum.Phase),
			sum.Phase.Done(), sum.CreatedAt.UnixNano(), nanos(sum.FinishedAt), sum.LastSeq,
			seqs, types, times, data)
	} else {
		tag, err = s.pool.Exec(ctx, appendRunSQL,
			sum.ID, string(sum.Phase), sum.Phase.Done(), nanos(sum.FinishedAt), p.ExpectedSeq, sum.LastSeq,
			seqs, types, times, data)
	}
	if err != nil {
		// Unreachable while every writer goes through the run row, as above. Kept so that
		// one that does not still yields ErrConflict, not a constraint error.
		if sqlState(err) == uniqueViolation {
			return fmt.Errorf("postgres: append to run %s after seq %d: a seq exists: %w", p.RunID, p.ExpectedSeq, store.ErrConflict)
		}
		return fmt.Errorf("postgres: append to run %s: %w", p.RunID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: append to run %s after seq %d: its last seq is not %d: %w",
			p.RunID, p.ExpectedSeq, p.ExpectedSeq, store.ErrConflict)
	}
	return nil
}

// checkAppend rejects what can only be a caller's bug, before any I/O. These are plain
// errors, not ErrConflict: re-reading the run would not fix them.
func checkAppend(p store.EventAppendParams) error {
	if p.RunID == "" {
		return errors.New("postgres: append: empty run id")
	}
	if p.ExpectedSeq < 0 {
		return fmt.Errorf("postgres: append to run %s: expected seq %d is negative", p.RunID, p.ExpectedSeq)
	}
	if len(p.Events) == 0 {
		return fmt.Errorf("postgres: append to run %s: no events", p.RunID)
	}
	for i, e := range p.Events {
		if e.RunID != p.RunID {
			return fmt.Errorf("postgres: append to run %s: event %d is for run %q", p.RunID, e.Seq, e.RunID)
		}
		if want := p.ExpectedSeq + int64(i) + 1; e.Seq != want {
			return fmt.Errorf("postgres: append to run %s after seq %d: the batch's event %d has seq %d, want %d",
				p.RunID, p.ExpectedSeq, i+1, e.Seq, want)
		}
	}
	last := p.Events[len(p.Events)-1].Seq
	switch sum := p.Summary; {
	case sum.ID != p.RunID:
		return fmt.Errorf("postgres: append to run %s: summary is of run %q", p.RunID, sum.ID)
	case sum.LastSeq != last:
		return fmt.Errorf("postgres: append to run %s: summary has last seq %d, the events end at %d", p.RunID, sum.LastSeq, last)
	case sum.CreatedAt.IsZero():
		return fmt.Errorf("postgres: append to run %s: summary has no created_at", p.RunID)
	}
	return nil
}

// EventList returns a run's events after p.AfterSeq, in order; none (and no error) for a
// run that does not exist.
func (s *Store) EventList(ctx context.Context, p store.EventListParams) ([]run.Event, error) {
	n, err := limit(p.Limit, -1)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx,
		`SELECT seq, data FROM events WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, p.RunID, p.AfterSeq, n)
	if err != nil {
		return nil, fmt.Errorf("postgres: list events of run %s: %w", p.RunID, err)
	}
	defer rows.Close()
	events := []run.Event{}
	var (
		seq int64
		b   []byte
	)
	for rows.Next() {
		// Decoded at once, so the row's buffer may be reused: no copy.
		if err := rows.Scan(&seq, &b); err != nil {
			return nil, fmt.Errorf("postgres: list events of run %s: %w", p.RunID, err)
		}
		var e run.Event
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("postgres: list events of run %s: decode event %d: %w", p.RunID, seq, err)
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list events of run %s: %w", p.RunID, err)
	}
	return events, nil
}

// RunGet returns a run's projection, or an error wrapping store.ErrNotFound.
func (s *Store) RunGet(ctx context.Context, id string) (run.Summary, error) {
	sum, err := scanRun(s.pool.QueryRow(ctx, `SELECT `+runColumns+` FROM runs WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return run.Summary{}, fmt.Errorf("postgres: run %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return run.Summary{}, fmt.Errorf("postgres: run %s: %w", id, err)
	}
	return sum, nil
}

// RunList returns the projections that match p, newest first (created_at, then id,
// descending).
func (s *Store) RunList(ctx context.Context, p store.RunListParams) ([]run.Summary, error) {
	n, err := limit(p.Limit, 100)
	if err != nil {
		return nil, err
	}
	var (
		where []string
		args  []any
	)
	arg := func(cond string, v any) {
		args = append(args, v)
		where = append(where, cond+" = $"+strconv.Itoa(len(args)))
	}
	if p.Repo != "" {
		arg("repo", p.Repo)
	}
	if p.Team != "" {
		arg("team", p.Team)
	}
	if p.Phase != "" {
		arg("phase", string(p.Phase))
	}
	if p.Unfinished {
		// Literally the runs_unfinished index's condition, so the planner can use it.
		where = append(where, "NOT done")
	}
	q := `SELECT ` + runColumns + ` FROM runs`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, n)
	q += ` ORDER BY created_at DESC, id DESC LIMIT $` + strconv.Itoa(len(args))
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list runs: %w", err)
	}
	defer rows.Close()
	runs := []run.Summary{}
	for rows.Next() {
		sum, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list runs: %w", err)
		}
		runs = append(runs, sum)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list runs: %w", err)
	}
	return runs, nil
}

func scanRun(row pgx.Row) (run.Summary, error) {
	var (
		sum               run.Summary
		phase             string
		created, finished *int64
	)
	if err := row.Scan(&sum.ID, &sum.Repo, &sum.Team, &sum.Ref, &sum.SHA, &sum.Pipeline, &sum.Trigger,
		&phase, &created, &finished, &sum.LastSeq); err != nil {
		return run.Summary{}, err
	}
	sum.Phase = run.Phase(phase)
	sum.CreatedAt, sum.FinishedAt = fromNanos(created), fromNanos(finished)
	return sum, nil
}
