package forge

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/trigger"
)

// Secret resolves a secret of a team by name: the one place a forge credential's value
// comes from (the server reads the team's stored secrets, then its environment).
type Secret func(ctx context.Context, team, name string) (string, error)

// Resolver picks a repository's client from its registration: its provider, its API
// (ForgeAPI) and the token in the secret ForgeCredential names. A repository that is not
// registered, is local or names no credential gets nil: its runs are not reported.
func Resolver(repos func(ctx context.Context, name string) (trigger.Repo, error), secret Secret, hc *http.Client) func(context.Context, string) (Forge, error) {
	return func(ctx context.Context, name string) (Forge, error) {
		r, err := repos(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if r.ForgeCredential == "" {
			return nil, nil
		}
		token, err := secret(ctx, r.Team, r.ForgeCredential)
		if err != nil {
			return nil, fmt.Errorf("forge credential %s of %s: %w", r.ForgeCredential, name, err)
		}
		switch r.Provider {
		case "github":
			return NewGitHub(r.ForgeAPI, token, hc), nil
		case "gitlab":
			return NewGitLab(r.ForgeAPI, token, hc), nil
		case "bitbucket":
			return NewBitbucket(r.ForgeAPI, token, hc), nil
		}
		return nil, nil
	}
}
