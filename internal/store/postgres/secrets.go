package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paved/paved/internal/store"
)

// SecretPut stores a secret, replacing the one of the same team, environment and name but
// keeping its CreatedAt and CreatedBy.
func (s *Store) SecretPut(ctx context.Context, sec store.Secret) error {
	if sec.Team == "" || sec.Name == "" || sec.KeyID == "" || len(sec.Ciphertext) == 0 || sec.UpdatedAt.IsZero() {
		return errors.New("postgres: put secret: Team, Name, KeyID, Ciphertext and UpdatedAt are required")
	}
	created := sec.CreatedAt
	if created.IsZero() {
		created = sec.UpdatedAt
	}
	createdBy := sec.CreatedBy
	if createdBy == "" {
		createdBy = sec.UpdatedBy
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO secrets (team, environment, name, key_id, ciphertext, created_at, updated_at, created_by, updated_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (team, environment, name) DO UPDATE SET key_id = excluded.key_id, ciphertext = excluded.ciphertext,
			updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
		sec.Team, sec.Environment, sec.Name, sec.KeyID, sec.Ciphertext, created.UnixNano(), sec.UpdatedAt.UnixNano(), createdBy, sec.UpdatedBy)
	if err != nil {
		return fmt.Errorf("postgres: put secret %s/%s: %w", sec.Team, sec.Name, err)
	}
	return nil
}

const secretColumns = `team, environment, name, key_id, ciphertext, created_at, updated_at, created_by, updated_by`

// SecretGet returns one secret, or an error wrapping store.ErrNotFound.
func (s *Store) SecretGet(ctx context.Context, team, environment, name string) (store.Secret, error) {
	row := s.pool.QueryRow(ctx, `SELECT `+secretColumns+` FROM secrets WHERE team = $1 AND environment = $2 AND name = $3`, team, environment, name)
	sec, err := scanSecret(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Secret{}, fmt.Errorf("postgres: secret %s of team %s (environment %q): %w", name, team, environment, store.ErrNotFound)
	}
	if err != nil {
		return store.Secret{}, fmt.Errorf("postgres: secret %s of team %s: %w", name, team, err)
	}
	return sec, nil
}

// SecretList lists secrets by team, environment and name.
func (s *Store) SecretList(ctx context.Context, p store.SecretListParams) ([]store.Secret, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+secretColumns+` FROM secrets
		WHERE ($1 = '' OR team = $1) AND ($2 = '' OR key_id <> $2) ORDER BY team, environment, name`, p.Team, p.NotKeyID)
	if err != nil {
		return nil, fmt.Errorf("postgres: list secrets: %w", err)
	}
	defer rows.Close()
	out := []store.Secret{}
	for rows.Next() {
		sec, err := scanSecret(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list secrets: %w", err)
		}
		out = append(out, sec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list secrets: %w", err)
	}
	return out, nil
}

// SecretRekey replaces a secret's ciphertext if it is still sealed under p.OldKeyID.
func (s *Store) SecretRekey(ctx context.Context, p store.SecretRekeyParams) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE secrets SET key_id = $1, ciphertext = $2
		WHERE team = $3 AND environment = $4 AND name = $5 AND key_id = $6`,
		p.KeyID, p.Ciphertext, p.Team, p.Environment, p.Name, p.OldKeyID)
	if err != nil {
		return false, fmt.Errorf("postgres: rekey secret %s/%s: %w", p.Team, p.Name, err)
	}
	return tag.RowsAffected() == 1, nil
}

// SecretDelete removes a secret, or returns an error wrapping store.ErrNotFound.
func (s *Store) SecretDelete(ctx context.Context, team, environment, name string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM secrets WHERE team = $1 AND environment = $2 AND name = $3`, team, environment, name)
	if err != nil {
		return fmt.Errorf("postgres: delete secret %s/%s: %w", team, name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: delete secret %s of team %s (environment %q): %w", name, team, environment, store.ErrNotFound)
	}
	return nil
}

func scanSecret(row pgx.Row) (store.Secret, error) {
	var sec store.Secret
	var created, updated int64
	if err := row.Scan(&sec.Team, &sec.Environment, &sec.Name, &sec.KeyID, &sec.Ciphertext, &created, &updated, &sec.CreatedBy, &sec.UpdatedBy); err != nil {
		return store.Secret{}, err
	}
	sec.CreatedAt, sec.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	return sec, nil
}
