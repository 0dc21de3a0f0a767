package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/paved/paved/internal/store"
)

// AuditAppend appends one entry to the audit log. seal is called inside the write
// transaction with the chain's head and returns the entry to insert, which must have Seq
// head.Seq+1; SQLite's one writer makes two appends see different heads, so the chain
// cannot fork.
func (s *Store) AuditAppend(ctx context.Context, seal func(store.AuditHead) (store.AuditEntry, error)) (store.AuditEntry, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return store.AuditEntry{}, fmt.Errorf("sqlite: append audit entry: %w", err)
	}
	defer tx.Rollback()
	head, err := auditHead(ctx, tx)
	if err != nil {
		return store.AuditEntry{}, fmt.Errorf("sqlite: append audit entry: %w", err)
	}
	e, err := seal(head)
	if err != nil {
		return store.AuditEntry{}, err
	}
	if e.Seq != head.Seq+1 {
		return store.AuditEntry{}, fmt.Errorf("sqlite: append audit entry: seq %d does not follow %d", e.Seq, head.Seq)
	}
	details := e.Details
	if details == nil {
		details = []byte{}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit (seq, time, actor, action, team, target, details, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, e.Seq, formatTime(e.Time), e.Actor, e.Action, e.Team, e.Target, details, e.PrevHash, e.Hash); err != nil {
		return store.AuditEntry{}, fmt.Errorf("sqlite: append audit entry %d: %w", e.Seq, err)
	}
	if err := tx.Commit(); err != nil {
		return store.AuditEntry{}, fmt.Errorf("sqlite: append audit entry %d: %w", e.Seq, err)
	}
	return e, nil
}

// AuditHead returns the chain's head: its last entry, else the pruning anchor.
func (s *Store) AuditHead(ctx context.Context) (store.AuditHead, error) {
	h, err := auditHead(ctx, s.r)
	if err != nil {
		return store.AuditHead{}, fmt.Errorf("sqlite: audit head: %w", err)
	}
	return h, nil
}

// AuditAnchor returns the seq and hash of the last pruned entry (zero when none was).
func (s *Store) AuditAnchor(ctx context.Context) (store.AuditHead, error) {
	var h store.AuditHead
	err := s.r.QueryRowContext(ctx, `SELECT seq, hash FROM audit_anchor WHERE id = 1`).Scan(&h.Seq, &h.Hash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return store.AuditHead{}, fmt.Errorf("sqlite: audit anchor: %w", err)
	}
	return h, nil
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func auditHead(ctx context.Context, q queryRower) (store.AuditHead, error) {
	var h store.AuditHead
	err := q.QueryRowContext(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&h.Seq, &h.Hash)
	if errors.Is(err, sql.ErrNoRows) {
		err = q.QueryRowContext(ctx, `SELECT seq, hash FROM audit_anchor WHERE id = 1`).Scan(&h.Seq, &h.Hash)
		if errors.Is(err, sql.ErrNoRows) {
			return store.AuditHead{}, nil
		}
	}
	return h, err
}

// AuditList lists entries in seq order.
func (s *Store) AuditList(ctx context.Context, p store.AuditListParams) ([]store.AuditEntry, error) {
	n, err := limit(p.Limit, 100)
	if err != nil {
		return nil, err
	}
	var since, until any
	if !p.Since.IsZero() {
		since = formatTime(p.Since)
	}
	if !p.Until.IsZero() {
		until = formatTime(p.Until)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT seq, time, actor, action, team, target, details, prev_hash, hash FROM audit
		WHERE seq > ?1 AND (?2 = '' OR actor = ?2) AND (?3 = '' OR action = ?3) AND (?4 = '' OR team = ?4)
			AND (?5 IS NULL OR time >= ?5) AND (?6 IS NULL OR time < ?6)
		ORDER BY seq LIMIT ?7`, p.AfterSeq, p.Actor, p.Action, p.Team, since, until, n)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list audit entries: %w", err)
	}
	defer rows.Close()
	out := []store.AuditEntry{}
	for rows.Next() {
		var e store.AuditEntry
		var t string
		if err := rows.Scan(&e.Seq, &t, &e.Actor, &e.Action, &e.Team, &e.Target, &e.Details, &e.PrevHash, &e.Hash); err != nil {
			return nil, fmt.Errorf("sqlite: list audit entries: %w", err)
		}
		if e.Time, err = parseTime(t); err != nil {
			return nil, fmt.Errorf("sqlite: audit entry %d: %w", e.Seq, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list audit entries: %w", err)
	}
	return out, nil
}

// AuditPrune removes the entries older than p.Before, up to the first entry that is kept
// (so only a prefix of the chain goes), and moves the anchor to the last one removed.
func (s *Store) AuditPrune(ctx context.Context, p store.AuditPruneParams) (int64, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune audit log: %w", err)
	}
	defer tx.Rollback()
	// The prefix ends before the first entry that is not old, whatever the times after it.
	var last store.AuditHead
	err = tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit
		WHERE seq < coalesce((SELECT min(seq) FROM audit WHERE time >= ?1), (SELECT max(seq) + 1 FROM audit))
		ORDER BY seq DESC LIMIT 1`, formatTime(p.Before)).Scan(&last.Seq, &last.Hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune audit log: %w", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM audit WHERE seq <= ?`, last.Seq)
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune audit log: %w", err)
	}
	n, _ := res.RowsAffected()
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_anchor (id, seq, hash) VALUES (1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash`, last.Seq, last.Hash); err != nil {
		return 0, fmt.Errorf("sqlite: prune audit log: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlite: prune audit log: %w", err)
	}
	return n, nil
}
