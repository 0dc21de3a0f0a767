package forge

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// GitHub reports with commit statuses and issue comments (a pull request is an issue):
// POST /repos/{owner}/{repo}/statuses/{sha}, GET|POST /repos/{owner}/{repo}/issues/{n}/comments,
// PATCH /repos/{owner}/{repo}/issues/comments/{id}. Token: a fine-grained or classic
// personal access token, or an app installation token, with commit statuses and pull
// requests (or issues) write access.
type GitHub struct{ c client }

var _ Forge = (*GitHub)(nil)

// NewGitHub makes a client of base (default https://api.github.com; GitHub Enterprise:
// https://HOST/api/v3). hc nil means a client with a 30 s timeout.
func NewGitHub(base, token string, hc *http.Client) *GitHub {
	return &GitHub{c: newClient(base, "https://api.github.com", hc, func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+token)
		r.Header.Set("Accept", "application/vnd.github+json")
		r.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	})}
}

// githubStates maps paved's states: GitHub's statuses know pending, success, failure and
// error. A skipped stage counts as success, as GitHub Actions counts a skipped job.
var githubStates = map[string]string{StatePending: "pending", StateRunning: "pending", StateSuccess: "success",
	StateFailure: "failure", StateCancelled: "error", StateSkipped: "success"}

// SetStatus posts a commit status; GitHub keeps the latest per context.
func (g *GitHub) SetStatus(ctx context.Context, s Status) error {
	desc := s.Description
	if s.State == StateSkipped || s.State == StateCancelled || s.State == StateRunning {
		desc = strings.TrimSuffix(s.State+": "+desc, ": ") // the mapped state hides these
	}
	body := map[string]string{"state": githubStates[s.State], "context": s.Context,
		"description": truncate(desc, 140), "target_url": s.URL}
	return g.c.do(ctx, http.MethodPost, fmt.Sprintf("/repos/%s/statuses/%s", s.Repo, s.SHA), body, nil)
}

type githubComment struct {
	ID   int64  `json:"id"`
	Body string `json:"body"`
}

// UpsertComment finds paved's comment among the pull request's, then edits or creates it.
func (g *GitHub) UpsertComment(ctx context.Context, c Comment) error {
	for page := 1; page <= maxPages; page++ {
		var list []githubComment
		if err := g.c.do(ctx, http.MethodGet, fmt.Sprintf("/repos/%s/issues/%d/comments?per_page=100&page=%d", c.Repo, c.PR, page), nil, &list); err != nil {
			return err
		}
		for _, have := range list {
			if strings.Contains(have.Body, c.Marker) {
				return g.c.do(ctx, http.MethodPatch, fmt.Sprintf("/repos/%s/issues/comments/%d", c.Repo, have.ID),
					map[string]string{"body": c.Body}, nil)
			}
		}
		if len(list) < 100 {
			break
		}
	}
	return g.c.do(ctx, http.MethodPost, fmt.Sprintf("/repos/%s/issues/%d/comments", c.Repo, c.PR), map[string]string{"body": c.Body}, nil)
}

// maxPages bounds the search for paved's comment: 100 pages of 100 comments.
const maxPages = 100
