package sqlite

import (
	"context"
	"fmt"
	"time"
)

// TeamQuotaPut keeps a team's limit of running stages (0: no limit but capacity), replacing
// the one kept before.
func (s *Store) TeamQuotaPut(ctx context.Context, team string, limit int) error {
	if team == "" || limit < 0 {
		return fmt.Errorf("sqlite: put team quota: want a team and a limit >= 0, got %q and %d", team, limit)
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO team_quotas (team, max_running, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (team) DO UPDATE SET max_running = excluded.max_running, updated_at = excluded.updated_at`,
		team, limit, formatTime(time.Now()))
	if err != nil {
		return fmt.Errorf("sqlite: put team quota %s: %w", team, err)
	}
	return nil
}

// TeamQuotaList returns every kept team quota by team.
func (s *Store) TeamQuotaList(ctx context.Context) (map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT team, max_running FROM team_quotas`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list team quotas: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var team string
		var limit int
		if err := rows.Scan(&team, &limit); err != nil {
			return nil, fmt.Errorf("sqlite: list team quotas: %w", err)
		}
		out[team] = limit
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list team quotas: %w", err)
	}
	return out, nil
}
