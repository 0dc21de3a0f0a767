package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/paved/paved/internal/store"
)

// FreightPut records a freight. Freight is immutable: putting one whose ID is already stored
// is a no-op; another freight under a taken alias is an error wrapping store.ErrConflict.
func (s *Store) FreightPut(ctx context.Context, f store.Freight) error {
	if f.ID == "" || f.Alias == "" || f.CreatedAt.IsZero() {
		return errors.New("sqlite: put freight: ID, Alias and CreatedAt are required")
	}
	data, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("sqlite: put freight %s: %w", f.ID, err)
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO freight (id, alias, created_at, data) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`, f.ID, f.Alias, formatTime(f.CreatedAt), string(data))
	if isPrimaryKeyViolation(err) {
		return fmt.Errorf("sqlite: put freight %s: alias %s is taken: %w", f.ID, f.Alias, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("sqlite: put freight %s: %w", f.ID, err)
	}
	return nil
}

// FreightGet returns a freight by its ID or alias, or an error wrapping store.ErrNotFound.
func (s *Store) FreightGet(ctx context.Context, idOrAlias string) (store.Freight, error) {
	var data string
	err := s.r.QueryRowContext(ctx, `SELECT data FROM freight WHERE id = ?1 OR alias = ?1`, idOrAlias).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Freight{}, fmt.Errorf("sqlite: freight %s: %w", idOrAlias, store.ErrNotFound)
	}
	if err != nil {
		return store.Freight{}, fmt.Errorf("sqlite: freight %s: %w", idOrAlias, err)
	}
	var f store.Freight
	if err := json.Unmarshal([]byte(data), &f); err != nil {
		return store.Freight{}, fmt.Errorf("sqlite: freight %s: bad freight in database: %w", idOrAlias, err)
	}
	return f, nil
}

// FreightList lists freight, newest first; limit 0 means 100.
func (s *Store) FreightList(ctx context.Context, limitN int) ([]store.Freight, error) {
	n, err := limit(limitN, 100)
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT data FROM freight ORDER BY created_at DESC, id DESC LIMIT ?`, n)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list freight: %w", err)
	}
	out, err := listJSON[store.Freight](rows, "freight")
	if err != nil {
		return nil, fmt.Errorf("sqlite: list freight: %w", err)
	}
	return out, nil
}

// PromotionAppend records a new promotion at Version 1; its ID must be new.
func (s *Store) PromotionAppend(ctx context.Context, p store.Promotion) error {
	if p.ID == "" || p.Environment == "" || p.Freight == "" || p.State == "" || p.CreatedAt.IsZero() {
		return errors.New("sqlite: append promotion: ID, Environment, Freight, State and CreatedAt are required")
	}
	p.Version = 1
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("sqlite: append promotion %s: %w", p.ID, err)
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO promotions (id, environment, freight, state, version, created_at, data)
		VALUES (?, ?, ?, ?, 1, ?, ?)`, p.ID, p.Environment, p.Freight, p.State, formatTime(p.CreatedAt), string(data))
	if isPrimaryKeyViolation(err) {
		return fmt.Errorf("sqlite: append promotion %s: %w", p.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("sqlite: append promotion %s: %w", p.ID, err)
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
		return store.Promotion{}, fmt.Errorf("sqlite: update promotion %s: %w", p.ID, err)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE promotions SET state = ?, version = ?, data = ? WHERE id = ? AND version = ?`,
		p.State, p.Version, string(data), p.ID, old)
	if err != nil {
		return store.Promotion{}, fmt.Errorf("sqlite: update promotion %s: %w", p.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return store.Promotion{}, fmt.Errorf("sqlite: update promotion %s: %w", p.ID, err)
	} else if n == 0 {
		if _, err := s.PromotionGet(ctx, p.ID); err != nil {
			return store.Promotion{}, err
		}
		return store.Promotion{}, fmt.Errorf("sqlite: update promotion %s: version %d is stale: %w", p.ID, old, store.ErrConflict)
	}
	return p, nil
}

// PromotionGet returns a promotion, or an error wrapping store.ErrNotFound.
func (s *Store) PromotionGet(ctx context.Context, id string) (store.Promotion, error) {
	p, err := scanJSON[store.Promotion](s.r.QueryRowContext(ctx, `SELECT data FROM promotions WHERE id = ?`, id), "promotion")
	if errors.Is(err, sql.ErrNoRows) {
		return store.Promotion{}, fmt.Errorf("sqlite: promotion %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Promotion{}, fmt.Errorf("sqlite: promotion %s: %w", id, err)
	}
	return p, nil
}

// PromotionList lists promotions, newest first.
func (s *Store) PromotionList(ctx context.Context, p store.PromotionListParams) ([]store.Promotion, error) {
	n, err := limit(p.Limit, 100)
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT data FROM promotions
		WHERE (?1 = '' OR environment = ?1) AND (?2 = '' OR state = ?2) AND (?3 = '' OR freight = ?3)
		ORDER BY created_at DESC, id DESC LIMIT ?4`, p.Environment, p.State, p.Freight, n)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list promotions: %w", err)
	}
	out, err := listJSON[store.Promotion](rows, "promotion")
	if err != nil {
		return nil, fmt.Errorf("sqlite: list promotions: %w", err)
	}
	return out, nil
}
