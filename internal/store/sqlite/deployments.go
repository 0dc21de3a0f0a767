package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/paved/paved/internal/store"
)

// DeploymentAppend records a new deployment; its ID must be new.
func (s *Store) DeploymentAppend(ctx context.Context, d store.Deployment) error {
	if d.ID == "" || d.Environment == "" || d.StartedAt.IsZero() || d.Outcome == "" {
		return errors.New("sqlite: append deployment: ID, Environment, StartedAt and Outcome are required")
	}
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("sqlite: append deployment %s: %w", d.ID, err)
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO deployments (id, environment, started_at, outcome, data) VALUES (?, ?, ?, ?, ?)`,
		d.ID, d.Environment, formatTime(d.StartedAt), d.Outcome, string(data))
	if isPrimaryKeyViolation(err) {
		return fmt.Errorf("sqlite: append deployment %s: %w", d.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("sqlite: append deployment %s: %w", d.ID, err)
	}
	return nil
}

// DeploymentFinish records the outcome of an in-progress deployment.
func (s *Store) DeploymentFinish(ctx context.Context, p store.DeploymentFinishParams) error {
	if p.Outcome == "" || p.Outcome == store.DeploymentInProgress || p.FinishedAt.IsZero() {
		return fmt.Errorf("sqlite: finish deployment %s: a final Outcome and FinishedAt are required", p.ID)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: finish deployment %s: %w", p.ID, err)
	}
	defer tx.Rollback()
	d, err := scanJSON[store.Deployment](tx.QueryRowContext(ctx, `SELECT data FROM deployments WHERE id = ?`, p.ID), "deployment")
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: finish deployment %s: %w", p.ID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("sqlite: finish deployment %s: %w", p.ID, err)
	}
	if d.Outcome != store.DeploymentInProgress {
		return fmt.Errorf("sqlite: finish deployment %s: already %s: %w", p.ID, d.Outcome, store.ErrConflict)
	}
	d.Outcome, d.Reason, d.FinishedAt = p.Outcome, p.Reason, p.FinishedAt
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("sqlite: finish deployment %s: %w", p.ID, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE deployments SET outcome = ?, data = ? WHERE id = ?`, d.Outcome, string(data), p.ID); err != nil {
		return fmt.Errorf("sqlite: finish deployment %s: %w", p.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: finish deployment %s: %w", p.ID, err)
	}
	return nil
}

// DeploymentGet returns a deployment, or an error wrapping store.ErrNotFound.
func (s *Store) DeploymentGet(ctx context.Context, id string) (store.Deployment, error) {
	d, err := scanJSON[store.Deployment](s.r.QueryRowContext(ctx, `SELECT data FROM deployments WHERE id = ?`, id), "deployment")
	if errors.Is(err, sql.ErrNoRows) {
		return store.Deployment{}, fmt.Errorf("sqlite: deployment %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Deployment{}, fmt.Errorf("sqlite: deployment %s: %w", id, err)
	}
	return d, nil
}

// DeploymentList lists deployments, newest first.
func (s *Store) DeploymentList(ctx context.Context, p store.DeploymentListParams) ([]store.Deployment, error) {
	n, err := limit(p.Limit, 100)
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT data FROM deployments
		WHERE (?1 = '' OR environment = ?1) AND (?2 = '' OR outcome = ?2)
		ORDER BY started_at DESC, id DESC LIMIT ?3`, p.Environment, p.Outcome, n)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list deployments: %w", err)
	}
	out, err := listJSON[store.Deployment](rows, "deployment")
	if err != nil {
		return nil, fmt.Errorf("sqlite: list deployments: %w", err)
	}
	return out, nil
}
