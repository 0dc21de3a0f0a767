package postgres

import (
	"context"
	"fmt"
	"time"
)

// TeamQuotaPut keeps a team's limit of running stages (0: no limit but capacity), replacing
// the one kept before.
func (s *Store) TeamQuotaPut(ctx context.Context, team string, limit int) error {
	if team == "" || limit < 0 {
		return fmt.Errorf("postgres: put team quota: want a team and a limit >= 0, got %q and %d", team, limit)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO team_quotas (team, max_running, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (team) DO UPDATE SET max_running = excluded.max_running, updated_at = excluded.updated_at`,
		team, limit, nanos(time.Now()))
	if err != nil {
		return fmt.Errorf("postgres: put team quota %s: %w", team, err)
	}
	return nil
}

// TeamQuotaList returns every kept team quota by team.
func (s *Store) TeamQuotaList(ctx context.Context) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT team, max_running FROM team_quotas`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list team quotas: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var team string
		var limit int
		if err := rows.Scan(&team, &limit); err != nil {
			return nil, fmt.Errorf("postgres: list team quotas: %w", err)
		}
		out[team] = limit
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list team quotas: %w", err)
	}
	return out, nil
}
