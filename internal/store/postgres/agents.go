package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/paved/paved/internal/store"
)

// AgentTokenCreate stores a new agent token. A name whose token is valid is taken
// (store.ErrConflict: revoke it first); a revoked one is replaced.
func (s *Store) AgentTokenCreate(ctx context.Context, t store.AgentToken) error {
	if t.Name == "" || t.Hash == "" || t.CreatedAt.IsZero() {
		return errors.New("postgres: create agent token: Name, Hash and CreatedAt are required")
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO agent_tokens (name, hash, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, created_at = excluded.created_at, revoked_at = NULL
		WHERE agent_tokens.revoked_at IS NOT NULL`, t.Name, t.Hash, t.CreatedAt.UnixNano())
	if err != nil {
		return fmt.Errorf("postgres: create agent token %s: %w", t.Name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: agent token %s exists (revoke it first): %w", t.Name, store.ErrConflict)
	}
	return nil
}

// AgentTokenRevoke revokes the valid token of agent name, or returns store.ErrNotFound.
func (s *Store) AgentTokenRevoke(ctx context.Context, p store.AgentToken) error {
	tag, err := s.pool.Exec(ctx, `UPDATE agent_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL`,
		p.RevokedAt.UnixNano(), p.Name)
	if err != nil {
		return fmt.Errorf("postgres: revoke agent token %s: %w", p.Name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: agent token %s: %w", p.Name, store.ErrNotFound)
	}
	return nil
}

// AgentTokenList lists every agent token, revoked ones too, by name.
func (s *Store) AgentTokenList(ctx context.Context) ([]store.AgentToken, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, hash, created_at, revoked_at FROM agent_tokens ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list agent tokens: %w", err)
	}
	defer rows.Close()
	out := []store.AgentToken{}
	for rows.Next() {
		t, err := scanAgentToken(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list agent tokens: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// AgentTokenFind returns the valid token whose hash is hash, or store.ErrNotFound.
func (s *Store) AgentTokenFind(ctx context.Context, hash string) (store.AgentToken, error) {
	t, err := scanAgentToken(s.pool.QueryRow(ctx, `SELECT name, hash, created_at, revoked_at FROM agent_tokens
		WHERE hash = $1 AND revoked_at IS NULL`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return t, fmt.Errorf("postgres: agent token: %w", store.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("postgres: agent token: %w", err)
	}
	return t, nil
}

func scanAgentToken(row pgx.Row) (store.AgentToken, error) {
	var (
		t       store.AgentToken
		created int64
		revoked *int64
	)
	if err := row.Scan(&t.Name, &t.Hash, &created, &revoked); err != nil {
		return t, err
	}
	t.CreatedAt = fromNanos(&created)
	t.RevokedAt = fromNanos(revoked)
	return t, nil
}
