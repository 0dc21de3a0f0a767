package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paved/paved/internal/store"
)

// auditLock is the advisory lock key that serialises audit appends and pruning across
// every connection and server ("audit" in ASCII): two appends never read the same head.
const auditLock = 0x6175646974

// AuditAppend appends one entry to the audit log. seal is called inside the transaction,
// under the audit lock, with the chain's head and returns the entry to insert, which must
// have Seq head.Seq+1.
func (s *Store) AuditAppend(ctx context.Context, seal func(store.AuditHead) (store.AuditEntry, error)) (store.AuditEntry, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return store.AuditEntry{}, fmt.Errorf("postgres: append audit entry: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(auditLock)); err != nil {
		return store.AuditEntry{}, fmt.Errorf("postgres: append audit entry: take the audit lock: %w", err)
	}
	head, err := auditHead(ctx, tx)
	if err != nil {
		return store.AuditEntry{}, fmt.Errorf("postgres: append audit entry: %w", err)
	}
	e, err := seal(head)
	if err != nil {
		return store.AuditEntry{}, err
	}
	if e.Seq != head.Seq+1 {
		return store.AuditEntry{}, fmt.Errorf("postgres: append audit entry: seq %d does not follow %d", e.Seq, head.Seq)
	}
	details := e.Details
	if details == nil {
		details = []byte{}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO audit (seq, time, actor, action, team, target, details, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, e.Seq, e.Time.UnixNano(), e.Actor, e.Action, e.Team, e.Target, details, e.PrevHash, e.Hash); err != nil {
		return store.AuditEntry{}, fmt.Errorf("postgres: append audit entry %d: %w", e.Seq, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return store.AuditEntry{}, fmt.Errorf("postgres: append audit entry %d: %w", e.Seq, err)
	}
	return e, nil
}

// AuditHead returns the chain's head: its last entry, else the pruning anchor.
func (s *Store) AuditHead(ctx context.Context) (store.AuditHead, error) {
	h, err := auditHead(ctx, s.pool)
	if err != nil {
		return store.AuditHead{}, fmt.Errorf("postgres: audit head: %w", err)
	}
	return h, nil
}

// AuditAnchor returns the seq and hash of the last pruned entry (zero when none was).
func (s *Store) AuditAnchor(ctx context.Context) (store.AuditHead, error) {
	var h store.AuditHead
	err := s.pool.QueryRow(ctx, `SELECT seq, hash FROM audit_anchor WHERE id = 1`).Scan(&h.Seq, &h.Hash)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return store.AuditHead{}, fmt.Errorf("postgres: audit anchor: %w", err)
	}
	return h, nil
}

type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func auditHead(ctx context.Context, q queryRower) (store.AuditHead, error) {
	var h store.AuditHead
	err := q.QueryRow(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&h.Seq, &h.Hash)
	if errors.Is(err, pgx.ErrNoRows) {
		err = q.QueryRow(ctx, `SELECT seq, hash FROM audit_anchor WHERE id = 1`).Scan(&h.Seq, &h.Hash)
		if errors.Is(err, pgx.ErrNoRows) {
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
	var since, until *int64
	if !p.Since.IsZero() {
		v := p.Since.UnixNano()
		since = &v
	}
	if !p.Until.IsZero() {
		v := p.Until.UnixNano()
		until = &v
	}
	rows, err := s.pool.Query(ctx, `SELECT seq, time, actor, action, team, target, details, prev_hash, hash FROM audit
		WHERE seq > $1 AND ($2 = '' OR actor = $2) AND ($3 = '' OR action = $3) AND ($4 = '' OR team = $4)
			AND ($5::bigint IS NULL OR time >= $5) AND ($6::bigint IS NULL OR time < $6)
		ORDER BY seq LIMIT $7`, p.AfterSeq, p.Actor, p.Action, p.Team, since, until, n)
	if err != nil {
		return nil, fmt.Errorf("postgres: list audit entries: %w", err)
	}
	defer rows.Close()
	out := []store.AuditEntry{}
	for rows.Next() {
		var e store.AuditEntry
		var t int64
		if err := rows.Scan(&e.Seq, &t, &e.Actor, &e.Action, &e.Team, &e.Target, &e.Details, &e.PrevHash, &e.Hash); err != nil {
			return nil, fmt.Errorf("postgres: list audit entries: %w", err)
		}
		e.Time = time.Unix(0, t).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list audit entries: %w", err)
	}
	return out, nil
}

// AuditPrune removes the entries older than p.Before, up to the first entry that is kept
// (so only a prefix of the chain goes), and moves the anchor to the last one removed.
func (s *Store) AuditPrune(ctx context.Context, p store.AuditPruneParams) (int64, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("postgres: prune audit log: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(auditLock)); err != nil {
		return 0, fmt.Errorf("postgres: prune audit log: take the audit lock: %w", err)
	}
	var last store.AuditHead
	err = tx.QueryRow(ctx, `SELECT seq, hash FROM audit
		WHERE seq < coalesce((SELECT min(seq) FROM audit WHERE time >= $1), (SELECT max(seq) + 1 FROM audit))
		ORDER BY seq DESC LIMIT 1`, p.Before.UnixNano()).Scan(&last.Seq, &last.Hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: prune audit log: %w", err)
	}
	tag, err := tx.Exec(ctx, `DELETE FROM audit WHERE seq <= $1`, last.Seq)
	if err != nil {
		return 0, fmt.Errorf("postgres: prune audit log: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO audit_anchor (id, seq, hash) VALUES (1, $1, $2)
		ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash`, last.Seq, last.Hash); err != nil {
		return 0, fmt.Errorf("postgres: prune audit log: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("postgres: prune audit log: %w", err)
	}
	return tag.RowsAffected(), nil
}
