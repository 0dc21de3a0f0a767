package insight

import (
	"context"
	"time"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// RunStore is what the analytics read of a store.
type RunStore interface {
	RunList(ctx context.Context, p store.RunListParams) ([]run.Summary, error)
	EventList(ctx context.Context, p store.EventListParams) ([]run.Event, error)
}

// MaxRuns bounds how many runs one analysis folds: the newest in its window.
const MaxRuns = 10000

// Runs folds the runs of a repository and team (empty: all) created in [since, until) (zero
// until: no end), newest first, at most MaxRuns; truncated says the window held more.
func Runs(ctx context.Context, st RunStore, repo, team string, since, until time.Time) (states []*run.State, truncated bool, err error) {
	sums, err := st.RunList(ctx, store.RunListParams{Repo: repo, Team: team, Limit: MaxRuns + 1})
	if err != nil {
		return nil, false, err
	}
	for _, sum := range sums {
		if sum.CreatedAt.Before(since) || (!until.IsZero() && !sum.CreatedAt.Before(until)) {
			continue
		}
		if len(states) == MaxRuns {
			return states, true, nil
		}
		evs, err := st.EventList(ctx, store.EventListParams{RunID: sum.ID})
		if err != nil {
			return nil, false, err
		}
		s, err := run.Fold(evs)
		if err != nil {
			return nil, false, err
		}
		states = append(states, s)
	}
	return states, len(sums) > MaxRuns, nil
}
