package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/paved/paved/internal/store"
)

// FreightPut records a freight. Freight is immutable: putting one whose ID is already stored
// is a no-op; another freight under a taken alias is an error wrapping store.ErrConflict.
func (s *Store) FreightPut(ctx context.Context, f store.Freight) error {
	if f.ID == "" || f.Alias == "" || f.CreatedAt.IsZero() {
		return errors.New("postgres: put freight: ID, Alias and CreatedAt are required")
	}
	data, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("postgres: put freight %s: %w", f.ID, err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO freight (id, alias, created_at, data) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO NOTHING`, f.ID, f.Alias, f.CreatedAt.UnixNano(), data)
	if sqlState(err) == uniqueViolation {
		return fmt.Errorf("postgres: put freight %s: alias %s is taken: %w", f.ID, f.Alias, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("postgres: put freight %s: %w", f.ID, err)
	}
	return nil
}

// FreightGet returns a freight by its ID or alias, or an error wrapping store.ErrNotFound.
func (s *Store) FreightGet(ctx context.Context, idOrAlias string) (store.Freight, error) {
	var data []byte
	err := s.pool.QueryRow(ctx, `SELECT data FROM freight WHERE id = $1 OR alias = $1`, idOrAlias).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Freight{}, fmt.Errorf("postgres: freight %s: %w", idOrAlias, store.ErrNotFound)
	}
	if err != nil {
		return store.Freight{}, fmt.Errorf("postgres: freight %s: %w", idOrAlias, err)
	}
	var f store.Freight
	if err := json.Unmarshal(data, &f); err != nil {
		return store.Freight{}, fmt.Errorf("postgres: freight %s: bad freight in database: %w", idOrAlias, err)
	}
	return f, nil
}

// FreightList lists freight, newest first; limit 0 means 100.
func (s *Store) FreightList(ctx context.Context, limitN int) ([]store.Freight, error) {
	n, err := limit(limitN, 100)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT data FROM freight ORDER BY created_at DESC, id DESC LIMIT $1`, n)
	if err != nil {
		return nil, fmt.Errorf("postgres: list freight: %w", err)
	}
	out, err := listJSON[store.Freight](rows, "freight")
	if err != nil {
		return nil, fmt.Errorf("postgres: list freight: %w", err)
	}
	return out, nil
}

// PromotionAppend records a new promotion at Version 1; its ID must be new.
func (s *Store) PromotionAppend(ctx context.Context, p store.Promotion) error {
	if p.ID == "" || p.Environment == "" || p.Freight == "" || p.State == "" || p.CreatedAt.IsZero() {
		return errors.New("postgres: append promotion: ID, Environment, Freight, State and CreatedAt are required")
	}
	p.Version = 1
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("postgres: append promotion %s: %w", p.ID, err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO promotions (id, environment, freight, state, version, created_at, data)
		VALUES ($1, $2, $3, $4, 1, $5, $6)`, p.ID, p.Environment, p.Freight, p.State, p.CreatedAt.UnixNano(), data)
	if sqlState(err) == uniqueViolation {
		return fmt.Errorf("postgres: append promotion %s: %w", p.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("postgres: append promotion %s: %w", p.ID, err)
	}
	return nil
}

// PromotionUpdate replaces a promotion if its stored Version is still p.Version, and returns
// it as stored (Version+1). A stale Version is an error wrapping store.ErrConflict.
func (s *Store) PromotionUpdate(ctx context.Context, p store.Promotion) (store.Promotion, error) {
	old := p.Version
	p.Version++
	data, err := json.Marshal(p)
	if err != nil {
		return store.Promotion{}, fmt.Errorf("postgres: update promotion %s: %w", p.ID, err)
	}
	res, err := s.pool.Exec(ctx, `UPDATE promotions SET state = $1, version = $2, data = $3 WHERE id = $4 AND version = $5`,
		p.State, p.Version, data, p.ID, old)
	if err != nil {
		return store.Promotion{}, fmt.Errorf("postgres: update promotion %s: %w", p.ID, err)
	}
	if res.RowsAffected() == 0 {
		if _, err := s.PromotionGet(ctx, p.ID); err != nil {
			return store.Promotion{}, err
		}
		return store.Promotion{}, fmt.Errorf("postgres: update promotion %s: version %d is stale: %w", p.ID, old, store.ErrConflict)
	}
	return p, nil
}

// PromotionGet returns a promotion, or an error wrapping store.ErrNotFound.
func (s *Store) PromotionGet(ctx context.Context, id string) (store.Promotion, error) {
	p, err := scanJSON[store.Promotion](s.pool.QueryRow(ctx, `SELECT data FROM promotions WHERE id = $1`, id), "promotion")
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Promotion{}, fmt.Errorf("postgres: promotion %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Promotion{}, fmt.Errorf("postgres: promotion %s: %w", id, err)
	}
	return p, nil
}

// PromotionList lists promotions, newest first.
func (s *Store) PromotionList(ctx context.Context, p store.PromotionListParams) ([]store.Promotion, error) {
	n, err := limit(p.Limit, 100)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT data FROM promotions
		WHERE ($1 = '' OR environment = $1) AND ($2 = '' OR state = $2) AND ($3 = '' OR freight = $3)
		ORDER BY created_at DESC, id DESC LIMIT $4`, p.Environment, p.State, p.Freight, n)
	if err != nil {
		return nil, fmt.Errorf("postgres: list promotions: %w", err)
	}
	out, err := listJSON[store.Promotion](rows, "promotion")
	if err != nil {
		return nil, fmt.Errorf("postgres: list promotions: %w", err)
	}
	return out, nil
}
