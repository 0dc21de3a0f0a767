package forge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// GitLab reports with the commit status API and merge request notes:
// POST /projects/{id}/statuses/{sha}, GET|POST /projects/{id}/merge_requests/{iid}/notes,
// PUT /projects/{id}/merge_requests/{iid}/notes/{note_id}; {id} is the URL-encoded path.
// Token: a project, group or personal access token with the api scope.
type GitLab struct{ c client }

var _ Forge = (*GitLab)(nil)

// NewGitLab makes a client of base (default https://gitlab.com/api/v4). hc nil means a
// client with a 30 s timeout.
func NewGitLab(base, token string, hc *http.Client) *GitLab {
	return &GitLab{c: newClient(base, "https://gitlab.com/api/v4", hc, func(r *http.Request) {
		r.Header.Set("PRIVATE-TOKEN", token)
	})}
}

var gitlabStates = map[string]string{StatePending: "pending", StateRunning: "running", StateSuccess: "success",
	StateFailure: "failed", StateCancelled: "canceled", StateSkipped: "skipped"}

// SetStatus posts a commit status. GitLab refuses to move a status to the state it is in
// ("Cannot transition status"): that is the wanted state already, so not an error.
func (g *GitLab) SetStatus(ctx context.Context, s Status) error {
	body := map[string]string{"state": gitlabStates[s.State], "name": s.Context,
		"description": truncate(s.Description, 255), "target_url": s.URL}
	err := g.c.do(ctx, http.MethodPost, fmt.Sprintf("/projects/%s/statuses/%s", url.PathEscape(s.Repo), s.SHA), body, nil)
	var h *HTTPError
	if errors.As(err, &h) && h.Status == http.StatusBadRequest && strings.Contains(h.Body, "Cannot transition status") {
		return nil
	}
	return err
}

type gitlabNote struct {
	ID   int64  `json:"id"`
	Body string `json:"body"`
}

// UpsertComment finds paved's note among the merge request's, then edits or creates it.
func (g *GitLab) UpsertComment(ctx context.Context, c Comment) error {
	notes := fmt.Sprintf("/projects/%s/merge_requests/%d/notes", url.PathEscape(c.Repo), c.PR)
	for page := 1; page <= maxPages; page++ {
		var list []gitlabNote
		if err := g.c.do(ctx, http.MethodGet, fmt.Sprintf("%s?per_page=100&page=%d", notes, page), nil, &list); err != nil {
			return err
		}
		for _, have := range list {
			if strings.Contains(have.Body, c.Marker) {
				return g.c.do(ctx, http.MethodPut, fmt.Sprintf("%s/%d", notes, have.ID), map[string]string{"body": c.Body}, nil)
			}
		}
		if len(list) < 100 {
			break
		}
	}
	return g.c.do(ctx, http.MethodPost, notes, map[string]string{"body": c.Body}, nil)
}
