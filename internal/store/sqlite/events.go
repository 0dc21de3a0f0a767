package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// upsertRunSQL writes the projection. On an existing run only what events can change is
// set: repo, team, ref, sha, pipeline, trigger and created_at come from RunCreated and never
// change, and leaving them out of SET spares SQLite rewriting the indexes on them at every
// append.
const upsertRunSQL = `INSERT INTO runs
	(id, repo, team, ref, sha, pipeline, "trigger", phase, done, created_at, finished_at, last_seq)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO UPDATE SET
		phase = excluded.phase,
		done = excluded.done,
		finished_at = excluded.finished_at,
		last_seq = excluded.last_seq`

const runColumns = `id, repo, team, ref, sha, pipeline, "trigger", phase, created_at, finished_at, last_seq`

// maxAppendBatch bounds the appends one group commit takes. A batch holds the write
// connection for its whole transaction (log lines and triggers wait behind it), and the
// gain of a bigger one is small past a few hundred appends: the per-transaction cost it
// shares is by then a small part of the work.
const maxAppendBatch = 256

// appendReq is one EventAppend waiting for a group commit.
type appendReq struct {
	ctx  context.Context
	p    store.EventAppendParams
	data []string // the events' JSON, encoded by the caller before it queued
	err  error    // the result, set by the leader before it sends false on wake
	// wake gets true when the request is to lead the next batch, false when the batch
	// that held it is over and err is its result. Buffered: the sender never waits.
	wake chan bool
}

// EventAppend appends p.Events to run p.RunID and writes p.Summary as its projection, in
// one transaction, if the run's last seq is still p.ExpectedSeq; otherwise it returns an
// error wrapping store.ErrConflict and writes nothing.
//
// Concurrent calls are group-committed: appends that arrive while a transaction is being
// written queue up, and the next transaction takes all of them (up to maxAppendBatch). Each
// append is still checked and applied on its own, in arrival order, inside that
// transaction: a conflict of one fails that one alone. The caller that finds no batch
// being written leads the next one itself, so no goroutine outlives the calls; when its
// batch is committed it hands the lead to the first caller that queued meanwhile, so that
// no caller writes others' batches for long.
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
	r := &appendReq{ctx: ctx, p: p, data: data, wake: make(chan bool, 1)}
	s.appendMu.Lock()
	s.appendQueue = append(s.appendQueue, r)
	lead := !s.appendLeading
	s.appendLeading = true
	s.appendMu.Unlock()
	// A queued request is not abandoned when ctx ends: the batch holding it may be
	// committing. The leader checks ctx before it writes the request, and a batch is short.
	if !lead && !<-r.wake {
		return r.err
	}

	s.appendMu.Lock()
	n := min(len(s.appendQueue), maxAppendBatch)
	batch := s.appendQueue[:n:n]
	s.appendQueue = slices.Clone(s.appendQueue[n:]) // lets the batch's array go
	s.appendMu.Unlock()

	s.commitAppends(batch)

	s.appendMu.Lock()
	if len(s.appendQueue) > 0 {
		s.appendQueue[0].wake <- true
	} else {
		s.appendLeading = false
	}
	s.appendMu.Unlock()
	for _, b := range batch {
		if b != r {
			b.wake <- false
		}
	}
	return r.err
}

// commitAppends writes a batch of appends in one transaction and sets each request's err.
// An append that conflicts fails alone: its check comes before it writes anything. Any
// other error inside the transaction (which may have half-written that append) rolls the
// transaction back; the append that met it gets the error and the others are written again
// in a new transaction, so that all or none of each append is stored. An error of the
// transaction itself (begin, commit) fails the whole batch.
func (s *Store) commitAppends(batch []*appendReq) {
	for len(batch) > 0 {
		bad, err := s.tryAppends(batch)
		if err == nil {
			return
		}
		if bad < 0 {
			for _, r := range batch {
				r.err = err
			}
			return
		}
		batch[bad].err = err
		batch = slices.Delete(slices.Clone(batch), bad, bad+1)
	}
}

// tryAppends runs one transaction over the batch and, when it commits, sets each request's
// err (nil, a conflict, or the end of its context). When one request's statement fails it
// returns that request's index and error, the transaction rolled back; when the transaction
// as a whole fails, -1 and the error.
func (s *Store) tryAppends(batch []*appendReq) (int, error) {
	// Not any caller's context: a batch taken is finished whatever becomes of the caller
	// that leads it. Each request's own context is checked before it is written.
	ctx := context.Background()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return -1, fmt.Errorf("sqlite: append events: %w", err)
	}
	defer tx.Rollback()
	st := appendStmts{
		lastSeq: tx.StmtContext(ctx, s.lastSeq),
		upsert:  tx.StmtContext(ctx, s.upsertRun),
		insert:  tx.StmtContext(ctx, s.insertEvent),
	}
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = fmt.Errorf("sqlite: append to run %s: %w", r.p.RunID, err)
			continue
		}
		conflict, err := st.append(ctx, r)
		if err != nil {
			return i, err
		}
		r.err = conflict
	}
	if err := tx.Commit(); err != nil {
		return -1, fmt.Errorf("sqlite: append events: commit: %w", err)
	}
	return -1, nil
}

// appendStmts are the hot statements bound to one batch's transaction.
type appendStmts struct {
	lastSeq, upsert, insert *sql.Stmt
}

// append writes one request inside the batch's transaction. It returns a conflict (an
// error wrapping store.ErrConflict, nothing written) or an error that leaves the request
// perhaps half-written, which the caller must roll back.
func (st appendStmts) append(ctx context.Context, r *appendReq) (conflict, err error) {
	p, sum := r.p, r.p.Summary
	// Earlier appends of the batch, to this run too, are visible here: two appends of one
	// run in a batch behave as they would one transaction after the other.
	var last int64
	if err := st.lastSeq.QueryRowContext(ctx, p.RunID).Scan(&last); err != nil {
		return nil, fmt.Errorf("sqlite: append to run %s: %w", p.RunID, err)
	}
	if last != p.ExpectedSeq {
		return fmt.Errorf("sqlite: append to run %s after seq %d: its last seq is %d: %w",
			p.RunID, p.ExpectedSeq, last, store.ErrConflict), nil
	}
	// The run row first: the events reference it.
	if _, err := st.upsert.ExecContext(ctx,
		sum.ID, sum.Repo, sum.Team, sum.Ref, sum.SHA, sum.Pipeline, sum.Trigger, string(sum.Phase),
		sum.Phase.Done(), formatTime(sum.CreatedAt), formatTimeOrNull(sum.FinishedAt), sum.LastSeq,
	); err != nil {
		return nil, fmt.Errorf("sqlite: append to run %s: write summary: %w", p.RunID, err)
	}
	for i, e := range p.Events {
		if _, err := st.insert.ExecContext(ctx, e.RunID, e.Seq, string(e.Type), formatTime(e.Time), r.data[i]); err != nil {
			// Unreachable while every writer checks the seq under the write lock, as
			// above (another process included: BEGIN IMMEDIATE serialises them). Kept so
			// that one that does not still yields ErrConflict, not a constraint error;
			// the batch is rolled back and written again without this append.
			if isPrimaryKeyViolation(err) {
				return nil, fmt.Errorf("sqlite: append to run %s: seq %d exists: %w", p.RunID, e.Seq, store.ErrConflict)
			}
			return nil, fmt.Errorf("sqlite: append to run %s: event %d: %w", p.RunID, e.Seq, err)
		}
	}
	return nil, nil
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
