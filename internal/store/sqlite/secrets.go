package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/paved/paved/internal/store"
)

// SecretPut stores a secret, replacing the one of the same team, environment and name but
// keeping its CreatedAt and CreatedBy.
func (s *Store) SecretPut(ctx context.Context, sec store.Secret) error {
	if sec.Team == "" || sec.Name == "" || sec.KeyID == "" || len(sec.Ciphertext) == 0 || sec.UpdatedAt.IsZero() {
		return errors.New("sqlite: put secret: Team, Name, KeyID, Ciphertext and UpdatedAt are required")
	}
	created := sec.CreatedAt
	if created.IsZero() {
		created = sec.UpdatedAt
	}
	createdBy := sec.CreatedBy
	if createdBy == "" {
		createdBy = sec.UpdatedBy
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO secrets (team, environment, name, key_id, ciphertext, created_at, updated_at, created_by, updated_by)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (team, environment, name) DO UPDATE SET key_id = excluded.key_id, ciphertext = excluded.ciphertext,
			updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
		sec.Team, sec.Environment, sec.Name, sec.KeyID, sec.Ciphertext, formatTime(created), formatTime(sec.UpdatedAt), createdBy, sec.UpdatedBy)
	if err != nil {
		return fmt.Errorf("sqlite: put secret %s/%s: %w", sec.Team, sec.Name, err)
	}
	return nil
}

// SecretGet returns one secret, or an error wrapping store.ErrNotFound.
func (s *Store) SecretGet(ctx context.Context, team, environment, name string) (store.Secret, error) {
	row := s.r.QueryRowContext(ctx, `SELECT team, environment, name, key_id, ciphertext, created_at, updated_at, created_by, updated_by
		FROM secrets WHERE team = ? AND environment = ? AND name = ?`, team, environment, name)
	sec, err := scanSecret(row)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Secret{}, fmt.Errorf("sqlite: secret %s of team %s (environment %q): %w", name, team, environment, store.ErrNotFound)
	}
	if err != nil {
		return store.Secret{}, fmt.Errorf("sqlite: secret %s of team %s: %w", name, team, err)
	}
	return sec, nil
}

// SecretList lists secrets by team, environment and name.
func (s *Store) SecretList(ctx context.Context, p store.SecretListParams) ([]store.Secret, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT team, environment, name, key_id, ciphertext, created_at, updated_at, created_by, updated_by
		FROM secrets WHERE (?1 = '' OR team = ?1) AND (?2 = '' OR key_id <> ?2) ORDER BY team, environment, name`, p.Team, p.NotKeyID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list secrets: %w", err)
	}
	defer rows.Close()
	out := []store.Secret{}
	for rows.Next() {
		sec, err := scanSecret(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list secrets: %w", err)
		}
		out = append(out, sec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list secrets: %w", err)
	}
	return out, nil
}

// SecretRekey replaces a secret's ciphertext if it is still sealed under p.OldKeyID.
func (s *Store) SecretRekey(ctx context.Context, p store.SecretRekeyParams) (bool, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE secrets SET key_id = ?, ciphertext = ?
		WHERE team = ? AND environment = ? AND name = ? AND key_id = ?`,
		p.KeyID, p.Ciphertext, p.Team, p.Environment, p.Name, p.OldKeyID)
	if err != nil {
		return false, fmt.Errorf("sqlite: rekey secret %s/%s: %w", p.Team, p.Name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: rekey secret %s/%s: %w", p.Team, p.Name, err)
	}
	return n == 1, nil
}

// SecretDelete removes a secret, or returns an error wrapping store.ErrNotFound.
func (s *Store) SecretDelete(ctx context.Context, team, environment, name string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM secrets WHERE team = ? AND environment = ? AND name = ?`, team, environment, name)
	if err != nil {
		return fmt.Errorf("sqlite: delete secret %s/%s: %w", team, name, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("sqlite: delete secret %s of team %s (environment %q): %w", name, team, environment, store.ErrNotFound)
	}
	return nil
}

func scanSecret(row interface{ Scan(...any) error }) (store.Secret, error) {
	var sec store.Secret
	var created, updated string
	if err := row.Scan(&sec.Team, &sec.Environment, &sec.Name, &sec.KeyID, &sec.Ciphertext, &created, &updated, &sec.CreatedBy, &sec.UpdatedBy); err != nil {
		return store.Secret{}, err
	}
	var err error
	if sec.CreatedAt, err = parseTime(created); err != nil {
		return store.Secret{}, err
	}
	if sec.UpdatedAt, err = parseTime(updated); err != nil {
		return store.Secret{}, err
	}
	return sec, nil
}
