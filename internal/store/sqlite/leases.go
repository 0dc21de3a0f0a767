package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/paved/paved/internal/store"
)

// LeaseAcquire takes or renews the lease p.Name for p.Owner (see store.LeaseParams) and
// says whether p.Owner holds it now. SQLite serves one server, but the one writer
// connection makes the conditional upsert as safe as PostgreSQL's.
func (s *Store) LeaseAcquire(ctx context.Context, p store.LeaseParams) (bool, error) {
	if p.Name == "" || p.Owner == "" || !p.Until.After(p.Now) {
		return false, errors.New("sqlite: acquire lease: Name, Owner and an Until after Now are required")
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO leases (name, owner, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
		WHERE leases.owner = excluded.owner OR leases.expires_at <= ?`,
		p.Name, p.Owner, p.Until.UnixNano(), p.Now.UnixNano())
	if err != nil {
		return false, fmt.Errorf("sqlite: acquire lease %s: %w", p.Name, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// LeaseRenew extends p.Owner's leases among p.Names and returns those it still holds.
func (s *Store) LeaseRenew(ctx context.Context, p store.LeaseRenewParams) ([]string, error) {
	if p.Owner == "" {
		return nil, errors.New("sqlite: renew leases: Owner is required")
	}
	held := []string{}
	for chunk := range chunks(p.Names, 500) {
		args := []any{p.Until.UnixNano(), p.Owner}
		for _, n := range chunk {
			args = append(args, n)
		}
		rows, err := s.w.QueryContext(ctx, `UPDATE leases SET expires_at = ? WHERE owner = ? AND name IN (?`+
			strings.Repeat(", ?", len(chunk)-1)+`) RETURNING name`, args...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: renew leases: %w", err)
		}
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				rows.Close()
				return nil, fmt.Errorf("sqlite: renew leases: %w", err)
			}
			held = append(held, name)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, fmt.Errorf("sqlite: renew leases: %w", err)
		}
	}
	return held, nil
}

func chunks(s []string, n int) func(func([]string) bool) {
	return func(yield func([]string) bool) {
		for len(s) > 0 {
			c := s[:min(n, len(s))]
			s = s[len(c):]
			if !yield(c) {
				return
			}
		}
	}
}

// LeaseRelease gives up p.Owner's lease p.Name; another owner's is left alone.
func (s *Store) LeaseRelease(ctx context.Context, p store.LeaseParams) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM leases WHERE name = ? AND owner = ?`, p.Name, p.Owner); err != nil {
		return fmt.Errorf("sqlite: release lease %s: %w", p.Name, err)
	}
	return nil
}

// RunLeaseClaim claims unfinished runs without a live lease (store.RunLeaseClaimParams),
// oldest first, in one transaction on the one writer connection.
func (s *Store) RunLeaseClaim(ctx context.Context, p store.RunLeaseClaimParams) ([]string, error) {
	n, err := limit(p.Limit, 100)
	if err != nil {
		return nil, err
	}
	if p.Owner == "" || !p.Until.After(p.Now) {
		return nil, errors.New("sqlite: claim runs: Owner and an Until after Now are required")
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim runs: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `INSERT INTO leases (name, owner, expires_at)
		SELECT ? || r.id, ?, ? FROM runs r LEFT JOIN leases l ON l.name = ? || r.id
		WHERE r.done = 0 AND (l.name IS NULL OR l.expires_at <= ?)
		ORDER BY r.created_at, r.id LIMIT ?
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
		RETURNING substr(name, ?)`,
		store.RunLeasePrefix, p.Owner, p.Until.UnixNano(), store.RunLeasePrefix, p.Now.UnixNano(), n, len(store.RunLeasePrefix)+1)
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim runs: %w", err)
	}
	ids := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: claim runs: %w", err)
		}
		ids = append(ids, id)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("sqlite: claim runs: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: claim runs: %w", err)
	}
	return ids, nil
}

// AgentTokenCreate stores a new agent token. A name whose token is valid is taken
// (store.ErrConflict: revoke it first); a revoked one is replaced.
func (s *Store) AgentTokenCreate(ctx context.Context, t store.AgentToken) error {
	if t.Name == "" || t.Hash == "" || t.CreatedAt.IsZero() {
		return errors.New("sqlite: create agent token: Name, Hash and CreatedAt are required")
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO agent_tokens (name, hash, created_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, created_at = excluded.created_at, revoked_at = NULL
		WHERE agent_tokens.revoked_at IS NOT NULL`, t.Name, t.Hash, formatTime(t.CreatedAt))
	if err != nil {
		return fmt.Errorf("sqlite: create agent token %s: %w", t.Name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sqlite: agent token %s exists (revoke it first): %w", t.Name, store.ErrConflict)
	}
	return nil
}

// AgentTokenRevoke revokes the valid token of agent p.Name at p.RevokedAt, or returns
// store.ErrNotFound.
func (s *Store) AgentTokenRevoke(ctx context.Context, p store.AgentToken) error {
	res, err := s.w.ExecContext(ctx, `UPDATE agent_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL`,
		formatTime(p.RevokedAt), p.Name)
	if err != nil {
		return fmt.Errorf("sqlite: revoke agent token %s: %w", p.Name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sqlite: agent token %s: %w", p.Name, store.ErrNotFound)
	}
	return nil
}

// AgentTokenList lists every agent token, revoked ones too, by name.
func (s *Store) AgentTokenList(ctx context.Context) ([]store.AgentToken, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, hash, created_at, revoked_at FROM agent_tokens ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list agent tokens: %w", err)
	}
	defer rows.Close()
	out := []store.AgentToken{}
	for rows.Next() {
		t, err := scanAgentToken(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list agent tokens: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// AgentTokenFind returns the valid token whose hash is hash, or store.ErrNotFound.
func (s *Store) AgentTokenFind(ctx context.Context, hash string) (store.AgentToken, error) {
	t, err := scanAgentToken(s.r.QueryRowContext(ctx, `SELECT name, hash, created_at, revoked_at FROM agent_tokens
		WHERE hash = ? AND revoked_at IS NULL`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("sqlite: agent token: %w", store.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("sqlite: agent token: %w", err)
	}
	return t, nil
}

func scanAgentToken(row interface{ Scan(...any) error }) (store.AgentToken, error) {
	var (
		t       store.AgentToken
		created string
		revoked sql.NullString
	)
	if err := row.Scan(&t.Name, &t.Hash, &created, &revoked); err != nil {
		return t, err
	}
	var err error
	if t.CreatedAt, err = parseTime(created); err != nil {
		return t, err
	}
	t.RevokedAt, err = parseTimeOrNull(revoked)
	return t, err
}
