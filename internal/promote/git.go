package promote

import (
	"context"
	"fmt"

	"github.com/paved/paved/internal/trigger"
)

// GitChanges lists changed files with the registered repo's git: repos looks a repository
// up by full name (the store's RepoGet).
func GitChanges(g *trigger.Git, repos func(ctx context.Context, fullName string) (trigger.Repo, error)) Changes {
	return func(ctx context.Context, repo, from, to string) ([]string, error) {
		r, err := repos(ctx, repo)
		if err != nil {
			return nil, fmt.Errorf("promote: repo %s: %w", repo, err)
		}
		rev, err := g.Resolve(ctx, r, to)
		if err != nil {
			return nil, err
		}
		return g.ChangedFiles(ctx, rev, from)
	}
}
