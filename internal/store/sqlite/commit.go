package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/paved/paved/internal/run"
)

// maxBatch bounds the writes one group commit takes. A write that starts work (see
// groupWrite) waits for the batch being written and then its own, so the bound is a trade
// between latency and the cost of a commit shared by fewer writes. Measured with bench/queue
// (1,000 triggers at once, bench/RESULTS.md): 256 gave a p99 trigger → first stage started of
// 110-220 ms, 64 about a third of that, for some 15% more CPU (more, smaller commits); 32
// added CPU again for little gain. Measured again once log lines cost a statement a batch
// (2026-12-02): 32 and 128 no better than 64.
const maxBatch = 64

// writeFunc is one write of a batch, run inside the batch's transaction. refused is the
// write's own failure when it wrote nothing (a seq conflict): the batch goes on without it.
// err means the write may be half done: the batch's transaction is rolled back, the write
// fails with err, and the others are written again without it.
type writeFunc func(ctx context.Context, st *batchStmts) (refused, err error)

// A write's rank: which writes a batch takes first when more wait than it takes.
const (
	rankCreate   = iota // a run's RunCreated: a trigger waits for it
	rankStart           // a StageStarted: a stage holding an executor slot waits for it
	rankProgress        // the rest (steps, results, log lines)
	ranks
)

// writeReq is one write waiting for a group commit.
type writeReq struct {
	ctx  context.Context
	do   writeFunc
	rank int
	// lines, when do is nil: a LogAppend, written with the batch's other log lines in one
	// statement (see insertLogs).
	lines []run.LogLine
	err   error // the result, set by the leader before it sends false on wake
	// wake gets true when the request is to lead the next batch, false when the batch that
	// held it is over and err is its result. Buffered: the sender never waits.
	wake chan bool
}

// batchStmts are the hot statements, bound to one batch's transaction.
type batchStmts struct {
	lastSeq, insertRun, updateRun, updateLiveRun, insertEvent *sql.Stmt
}

// groupWrite runs do in a transaction shared with the writes of other goroutines (group
// commit) and returns once that transaction is over: do's error, or nil once committed.
//
// Under load most of a short transaction's cost is its own (BEGIN IMMEDIATE, the WAL frames
// of pages every write touches, COMMIT, and the wait for the one write connection), so
// writes that arrive while a transaction is being written queue up and the next transaction
// takes all of them (up to maxBatch). The caller that finds no batch being written leads the
// next one itself, so no goroutine outlives the calls; once its batch is over it hands the
// lead to the first caller that queued meanwhile, so that no caller writes others' batches
// for long.
//
// Writes are taken by rank, then in arrival order: when more writes wait than a batch
// takes, those that start work go first and the others wait a batch longer. Under a burst
// this keeps a new run's first stage from waiting behind the step records and log lines
// of every run already going, and a trigger from waiting behind the stage starts of the
// runs created before it (a thousand at once, when a thousand slots are free).
//
// A queued write is not abandoned when its ctx ends (the batch holding it may be
// committing): the leader checks ctx just before it runs the write, and a batch is short.
func (s *Store) groupWrite(ctx context.Context, rank int, do writeFunc) error {
	return s.groupWriteReq(&writeReq{ctx: ctx, do: do, rank: rank, wake: make(chan bool, 1)})
}

// groupWriteReq is groupWrite of a request made by the caller (a LogAppend's has no do).
func (s *Store) groupWriteReq(r *writeReq) error {
	s.writeMu.Lock()
	s.writeQueues[r.rank] = append(s.writeQueues[r.rank], r)
	lead := !s.writeLeading
	s.writeLeading = true
	s.writeMu.Unlock()
	if !lead && !<-r.wake {
		return r.err
	}

	s.writeMu.Lock()
	batch := s.takeBatchLocked(r)
	s.writeMu.Unlock()

	s.commitBatch(batch)

	for _, b := range batch {
		if b != r {
			b.wake <- false
		}
	}
	// The lead last: the goroutine readied last is the one Go's scheduler runs next, and
	// every write waits for the next batch to start.
	s.writeMu.Lock()
	s.writeLeading = false
	for _, q := range s.writeQueues {
		if len(q) > 0 {
			q[0].wake <- true
			s.writeLeading = true
			break
		}
	}
	s.writeMu.Unlock()
	return r.err
}

// takeBatchLocked takes the leader's own write, then the others by rank, up to maxBatch,
// each rank in arrival order. The leader's write heads its queue: the lead only ever goes
// to a queue's head, and a caller that finds no leader finds every queue empty. The caller
// holds s.writeMu.
func (s *Store) takeBatchLocked(r *writeReq) []*writeReq {
	s.writeQueues[r.rank] = s.writeQueues[r.rank][1:]
	batch := []*writeReq{r}
	for i := range s.writeQueues {
		q := &s.writeQueues[i]
		n := min(len(*q), maxBatch-len(batch))
		batch = append(batch, (*q)[:n]...)
		*q = slices.Clone((*q)[n:]) // lets the taken part's array go
	}
	return batch
}

// commitBatch writes a batch in one transaction and sets each request's err. A write that
// refuses fails alone. A write that fails (perhaps half done) rolls the transaction back;
// it gets its error and the others are written again in a new transaction, so that all or
// none of each write is stored. An error of the transaction itself (begin, commit) fails
// the whole batch.
func (s *Store) commitBatch(batch []*writeReq) {
	linesApart := false
	for len(batch) > 0 {
		bad, err := s.tryBatch(batch, linesApart)
		switch {
		case err == nil:
			return
		case errors.Is(err, errLinesApart):
			linesApart = true
			continue
		case bad < 0:
			for _, r := range batch {
				r.err = err
			}
			return
		}
		batch[bad].err = err
		batch = slices.Delete(slices.Clone(batch), bad, bad+1)
	}
}

// errLinesApart: the batch's log lines, written together, failed (a line of a run that does
// not exist); the batch is written again with each LogAppend's lines on their own, to fail
// only the one at fault.
var errLinesApart = errors.New("sqlite: the batch's log lines failed together")

// tryBatch runs one transaction over the batch and, when it commits, sets each request's
// err (nil, its refusal, or the end of its context). When a write fails it returns that
// request's index and error, the transaction rolled back; when the transaction as a whole
// fails, -1 and the error. The log lines of the batch are written last, all in one
// statement (insertLogs), or with linesApart each LogAppend's in its own.
func (s *Store) tryBatch(batch []*writeReq, linesApart bool) (int, error) {
	// Not any caller's context: a batch taken is finished whatever becomes of the caller
	// that leads it. Each request's own context is checked before it is written.
	ctx := context.Background()
	if err := s.prepareLogStmts(ctx, batch, linesApart); err != nil {
		return -1, fmt.Errorf("sqlite: write: %w", err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return -1, fmt.Errorf("sqlite: write: %w", err)
	}
	defer tx.Rollback()
	st := &batchStmts{
		lastSeq:       tx.StmtContext(ctx, s.lastSeq),
		insertRun:     tx.StmtContext(ctx, s.insertRun),
		updateRun:     tx.StmtContext(ctx, s.updateRun),
		updateLiveRun: tx.StmtContext(ctx, s.updateLiveRun),
		insertEvent:   tx.StmtContext(ctx, s.insertEvent),
	}
	var lines []run.LogLine
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = fmt.Errorf("sqlite: write: %w", err)
			continue
		}
		r.err = nil
		if r.do == nil {
			if !linesApart {
				lines = append(lines, r.lines...)
				continue
			}
			if err := s.insertLogs(ctx, tx, r.lines); err != nil {
				return i, logError(r.lines, err)
			}
			continue
		}
		refused, err := r.do(ctx, st)
		if err != nil {
			return i, err
		}
		r.err = refused
	}
	if err := s.insertLogs(ctx, tx, lines); err != nil {
		// Most likely a line of a run that does not exist; whichever it is, it is one
		// LogAppend's to get, not every write's of the batch.
		return -1, fmt.Errorf("%w: %w", errLinesApart, err)
	}
	if err := tx.Commit(); err != nil {
		return -1, fmt.Errorf("sqlite: write: commit: %w", err)
	}
	return -1, nil
}
