package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// insertRunSQL writes a new run's projection; it changes nothing (and the append is a
// conflict) when the run exists.
const insertRunSQL = `INSERT INTO runs
	(id, repo, team, ref, sha, pipeline, "trigger", phase, done, created_at, finished_at, last_seq)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO NOTHING`

// updateRunSQL writes an existing run's projection if its last seq is still the one the
// append expects: the check of the expected seq and the write of the summary in one
// statement. Only what events can change is set (repo, team, ref, sha, pipeline, trigger and
// created_at come from RunCreated), which spares SQLite rewriting the indexes on the others.
// runs.last_seq is the events' last seq: every append writes both in one transaction.
const updateRunSQL = `UPDATE runs SET phase = ?, done = ?, finished_at = ?, last_seq = ?
	WHERE id = ? AND last_seq = ?`

// updateLiveRunSQL is updateRunSQL for an append that leaves an unfinished run unfinished,
// nearly every append: done is not in its SET, because SQLite rewrites the entry of the
// partial index runs_unfinished (WHERE done = 0) of every row whose UPDATE sets done, to the
// same value or not. When it writes no row (a conflict, or a finished run that an append
// makes unfinished again) updateRunSQL is tried, which tells the two apart.
const updateLiveRunSQL = `UPDATE runs SET phase = ?, finished_at = ?, last_seq = ?
	WHERE id = ? AND last_seq = ? AND done = 0`

const runColumns = `id, repo, team, ref, sha, pipeline, "trigger", phase, created_at, finished_at, last_seq`

// EventAppend appends p.Events to run p.RunID and writes p.Summary as its projection, in
// one transaction, if the run's last seq is still p.ExpectedSeq; otherwise it returns an
// error wrapping store.ErrConflict and writes nothing.
//
// Concurrent appends share a transaction (see groupWrite): each is still checked and
// applied on its own, so that a conflict of one fails that one alone. An append that
// creates a run goes first, then those that start a stage, then the others (steps,
// results) and log lines: a trigger waits on the first, a stage holding a slot on the
// second.
func (s *Store) EventAppend(ctx context.Context, p store.EventAppendParams) error {
	if err := checkAppend(p); err != nil {
		return err
	}
	// Encode before queueing: every caller waits for the writer. Strings, not []byte: the
	// driver binds []byte as a BLOB, which the STRICT TEXT column refuses (and TEXT is what
	// SQLite's JSON functions and the sqlite3 shell read).
	data := make([]string, len(p.Events))
	for i, e := range p.Events {
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("sqlite: append to run %s: encode event %d: %w", p.RunID, e.Seq, err)
		}
		data[i] = string(b)
	}
	rank := rankProgress
	for _, e := range p.Events {
		switch e.Type {
		case run.RunCreated:
			rank = rankCreate
		case run.StageStarted:
			rank = min(rank, rankStart)
		}
	}
	return s.groupWrite(ctx, rank, func(ctx context.Context, st *batchStmts) (refused, err error) {
		return st.appendEvents(ctx, p, data)
	})
}

// appendEvents writes one append inside a batch's transaction. It returns a conflict as
// refused (nothing written) or an error that may leave the append half-written, which the
// batch rolls back.
func (st *batchStmts) appendEvents(ctx context.Context, p store.EventAppendParams, data []string) (refused, err error) {
	sum := p.Summary
	// Earlier appends of the batch, to this run too, are visible here: two appends of one
	// run in a batch behave as they would one transaction after the other. The run row
	// first: the events reference it.
	var res sql.Result
	if p.ExpectedSeq == 0 {
		res, err = st.insertRun.ExecContext(ctx,
			sum.ID, sum.Repo, sum.Team, sum.Ref, sum.SHA, sum.Pipeline, sum.Trigger, string(sum.Phase),
			sum.Phase.Done(), formatTime(sum.CreatedAt), formatTimeOrNull(sum.FinishedAt), sum.LastSeq)
	} else {
		done, settled := sum.Phase.Done(), false
		if !done {
			res, err = st.updateLiveRun.ExecContext(ctx,
				string(sum.Phase), formatTimeOrNull(sum.FinishedAt), sum.LastSeq, p.RunID, p.ExpectedSeq)
			settled = err != nil || rowsAffected(res) > 0
		}
		if !settled { // a conflict, or a finished run made unfinished again
			res, err = st.updateRun.ExecContext(ctx,
				string(sum.Phase), done, formatTimeOrNull(sum.FinishedAt), sum.LastSeq, p.RunID, p.ExpectedSeq)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: append to run %s: write summary: %w", p.RunID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		// Nothing written: the run's last seq is another (or it does not exist).
		var last int64
		if err := st.lastSeq.QueryRowContext(ctx, p.RunID).Scan(&last); err != nil {
			return nil, fmt.Errorf("sqlite: append to run %s: %w", p.RunID, err)
		}
		return fmt.Errorf("sqlite: append to run %s after seq %d: its last seq is %d: %w",
			p.RunID, p.ExpectedSeq, last, store.ErrConflict), nil
	}
	for i, e := range p.Events {
		if _, err := st.insertEvent.ExecContext(ctx, e.RunID, e.Seq, string(e.Type), formatTime(e.Time), data[i]); err != nil {
			// Unreachable while every writer checks the seq under the write lock, as
			// above (another process included: BEGIN IMMEDIATE serialises them). Kept so
			// that one that does not still yields ErrConflict, not a constraint error.
			if isPrimaryKeyViolation(err) {
				return nil, fmt.Errorf("sqlite: append to run %s: seq %d exists: %w", p.RunID, e.Seq, store.ErrConflict)
			}
			return nil, fmt.Errorf("sqlite: append to run %s: event %d: %w", p.RunID, e.Seq, err)
		}
	}
	return nil, nil
}

// rowsAffected is res.RowsAffected, or 0 when SQLite cannot say.
func rowsAffected(res sql.Result) int64 {
	n, err := res.RowsAffected()
	if err != nil {
		return 0
	}
	return n
}

// checkAppend rejects what can only be a caller's bug, before any I/O. These are plain
// errors, not ErrConflict: re-reading the run would not fix them.
func checkAppend(p store.EventAppendParams) error {
	if p.RunID == "" {
		return errors.New("sqlite: append: empty run id")
	}
	if p.ExpectedSeq < 0 {
		return fmt.Errorf("sqlite: append to run %s: expected seq %d is negative", p.RunID, p.ExpectedSeq)
	}
	if len(p.Events) == 0 {
		return fmt.Errorf("sqlite: append to run %s: no events", p.RunID)
	}
	for i, e := range p.Events {
		if e.RunID != p.RunID {
			return fmt.Errorf("sqlite: append to run %s: event %d is for run %q", p.RunID, e.Seq, e.RunID)
		}
		if want := p.ExpectedSeq + int64(i) + 1; e.Seq != want {
			return fmt.Errorf("sqlite: append to run %s after seq %d: the batch's event %d has seq %d, want %d",
				p.RunID, p.ExpectedSeq, i+1, e.Seq, want)
		}
	}
	last := p.Events[len(p.Events)-1].Seq
	switch sum := p.Summary; {
	case sum.ID != p.RunID:
		return fmt.Errorf("sqlite: append to run %s: summary is of run %q", p.RunID, sum.ID)
	case sum.LastSeq != last:
		return fmt.Errorf("sqlite: append to run %s: summary has last seq %d, the events end at %d", p.RunID, sum.LastSeq, last)
	case sum.CreatedAt.IsZero():
		return fmt.Errorf("sqlite: append to run %s: summary has no created_at", p.RunID)
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
	rows, err := s.r.QueryContext(ctx,
		`SELECT seq, data FROM events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?`, p.RunID, p.AfterSeq, n)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list events of run %s: %w", p.RunID, err)
	}
	defer rows.Close()
	events := []run.Event{}
	var (
		seq int64
		b   sql.RawBytes // decoded at once, so no copy is needed
	)
	for rows.Next() {
		if err := rows.Scan(&seq, &b); err != nil {
			return nil, fmt.Errorf("sqlite: list events of run %s: %w", p.RunID, err)
		}
		var e run.Event
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("sqlite: list events of run %s: decode event %d: %w", p.RunID, seq, err)
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list events of run %s: %w", p.RunID, err)
	}
	return events, nil
}

// RunGet returns a run's projection, or an error wrapping store.ErrNotFound.
func (s *Store) RunGet(ctx context.Context, id string) (run.Summary, error) {
	sum, err := scanRun(s.r.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return run.Summary{}, fmt.Errorf("sqlite: run %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return run.Summary{}, fmt.Errorf("sqlite: run %s: %w", id, err)
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
	var where []string
	var args []any
	if p.Repo != "" {
		where, args = append(where, "repo = ?"), append(args, p.Repo)
	}
	if p.Team != "" {
		where, args = append(where, "team = ?"), append(args, p.Team)
	}
	if p.Phase != "" {
		where, args = append(where, "phase = ?"), append(args, string(p.Phase))
	}
	if p.Unfinished {
		// Literally the runs_unfinished index's condition, so the planner can use it.
		where = append(where, "done = 0")
	}
	q := `SELECT ` + runColumns + ` FROM runs`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, n)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list runs: %w", err)
	}
	defer rows.Close()
	runs := []run.Summary{}
	for rows.Next() {
		sum, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list runs: %w", err)
		}
		runs = append(runs, sum)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list runs: %w", err)
	}
	return runs, nil
}

func scanRun(row interface{ Scan(...any) error }) (run.Summary, error) {
	var (
		sum      run.Summary
		phase    string
		created  string
		finished sql.NullString
		err      error
	)
	if err := row.Scan(&sum.ID, &sum.Repo, &sum.Team, &sum.Ref, &sum.SHA, &sum.Pipeline, &sum.Trigger,
		&phase, &created, &finished, &sum.LastSeq); err != nil {
		return run.Summary{}, err
	}
	sum.Phase = run.Phase(phase)
	if sum.CreatedAt, err = parseTime(created); err != nil {
		return run.Summary{}, err
	}
	if sum.FinishedAt, err = parseTimeOrNull(finished); err != nil {
		return run.Summary{}, err
	}
	return sum, nil
}
