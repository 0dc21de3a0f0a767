package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/trigger"
)

// RepoPut registers a repo or replaces its registration, found by FullName. created_at
// stays that of the first registration: re-registering a repo does not make it new.
func (s *Store) RepoPut(ctx context.Context, r trigger.Repo) error {
	if r.FullName == "" {
		return errors.New("postgres: put repo: empty full name")
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO repos (full_name, clone_url, team, provider, webhook_secret, created_at, forge_credential, forge_api)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (full_name) DO UPDATE SET
			clone_url = excluded.clone_url,
			team = excluded.team,
			provider = excluded.provider,
			webhook_secret = excluded.webhook_secret,
			forge_credential = excluded.forge_credential,
			forge_api = excluded.forge_api`,
		r.FullName, r.CloneURL, r.Team, r.Provider, r.WebhookSecret, nanos(r.CreatedAt), r.ForgeCredential, r.ForgeAPI)
	if err != nil {
		return fmt.Errorf("postgres: put repo %s: %w", r.FullName, err)
	}
	return nil
}

const repoColumns = `full_name, clone_url, team, provider, webhook_secret, created_at, forge_credential, forge_api`

// RepoGet returns a registered repo, or an error wrapping store.ErrNotFound.
func (s *Store) RepoGet(ctx context.Context, fullName string) (trigger.Repo, error) {
	r, err := scanRepo(s.pool.QueryRow(ctx, `SELECT `+repoColumns+` FROM repos WHERE full_name = $1`, fullName))
	if errors.Is(err, pgx.ErrNoRows) {
		return trigger.Repo{}, fmt.Errorf("postgres: repo %s: %w", fullName, store.ErrNotFound)
	}
	if err != nil {
		return trigger.Repo{}, fmt.Errorf("postgres: repo %s: %w", fullName, err)
	}
	return r, nil
}

// RepoList returns every registered repo, by full name in byte order (the column's
// collation is "C").
func (s *Store) RepoList(ctx context.Context) ([]trigger.Repo, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+repoColumns+` FROM repos ORDER BY full_name`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list repos: %w", err)
	}
	defer rows.Close()
	repos := []trigger.Repo{}
	for rows.Next() {
		r, err := scanRepo(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list repos: %w", err)
		}
		repos = append(repos, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list repos: %w", err)
	}
	return repos, nil
}

func scanRepo(row pgx.Row) (trigger.Repo, error) {
	var (
		r       trigger.Repo
		created *int64
	)
	if err := row.Scan(&r.FullName, &r.CloneURL, &r.Team, &r.Provider, &r.WebhookSecret, &created, &r.ForgeCredential, &r.ForgeAPI); err != nil {
		return trigger.Repo{}, err
	}
	r.CreatedAt = fromNanos(created)
	return r, nil
}
