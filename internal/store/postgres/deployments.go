package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/paved/paved/internal/store"
)

// DeploymentAppend records a new deployment; its ID must be new.
func (s *Store) DeploymentAppend(ctx context.Context, d store.Deployment) error {
	if d.ID == "" || d.Environment == "" || d.StartedAt.IsZero() || d.Outcome == "" {
		return errors.New("postgres: append deployment: ID, Environment, StartedAt and Outcome are required")
	}
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("postgres: append deployment %s: %w", d.ID, err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO deployments (id, environment, started_at, outcome, data) VALUES ($1, $2, $3, $4, $5)`,
		d.ID, d.Environment, d.StartedAt.UnixNano(), d.Outcome, data)
	if sqlState(err) == uniqueViolation {
		return fmt.Errorf("postgres: append deployment %s: %w", d.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("postgres: append deployment %s: %w", d.ID, err)
	}
	return nil
}

// DeploymentFinish records the outcome of an in-progress deployment. The row is locked
// for the read and the write, so of two finishes racing one wins and the other conflicts.
func (s *Store) DeploymentFinish(ctx context.Context, p store.DeploymentFinishParams) error {
	if p.Outcome == "" || p.Outcome == store.DeploymentInProgress || p.FinishedAt.IsZero() {
		return fmt.Errorf("postgres: finish deployment %s: a final Outcome and FinishedAt are required", p.ID)
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		d, err := scanJSON[store.Deployment](tx.QueryRow(ctx, `SELECT data FROM deployments WHERE id = $1 FOR UPDATE`, p.ID), "deployment")
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("postgres: finish deployment %s: %w", p.ID, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("postgres: finish deployment %s: %w", p.ID, err)
		}
		if d.Outcome != store.DeploymentInProgress {
			return fmt.Errorf("postgres: finish deployment %s: already %s: %w", p.ID, d.Outcome, store.ErrConflict)
		}
		d.Outcome, d.Reason, d.FinishedAt = p.Outcome, p.Reason, p.FinishedAt
		data, err := json.Marshal(d)
		if err != nil {
			return fmt.Errorf("postgres: finish deployment %s: %w", p.ID, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE deployments SET outcome = $1, data = $2 WHERE id = $3`, d.Outcome, data, p.ID); err != nil {
			return fmt.Errorf("postgres: finish deployment %s: %w", p.ID, err)
		}
		return nil
	})
}

// DeploymentGet returns a deployment, or an error wrapping store.ErrNotFound.
func (s *Store) DeploymentGet(ctx context.Context, id string) (store.Deployment, error) {
	d, err := scanJSON[store.Deployment](s.pool.QueryRow(ctx, `SELECT data FROM deployments WHERE id = $1`, id), "deployment")
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Deployment{}, fmt.Errorf("postgres: deployment %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Deployment{}, fmt.Errorf("postgres: deployment %s: %w", id, err)
	}
	return d, nil
}

// DeploymentList lists deployments, newest first.
func (s *Store) DeploymentList(ctx context.Context, p store.DeploymentListParams) ([]store.Deployment, error) {
	n, err := limit(p.Limit, 100)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT data FROM deployments
		WHERE ($1 = '' OR environment = $1) AND ($2 = '' OR outcome = $2)
		ORDER BY started_at DESC, id DESC LIMIT $3`, p.Environment, p.Outcome, n)
	if err != nil {
		return nil, fmt.Errorf("postgres: list deployments: %w", err)
	}
	out, err := listJSON[store.Deployment](rows, "deployment")
	if err != nil {
		return nil, fmt.Errorf("postgres: list deployments: %w", err)
	}
	return out, nil
}
