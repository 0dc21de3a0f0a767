package forge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
)

// Bitbucket reports to Bitbucket Cloud with the build status API and pull request
// comments: POST /repositories/{workspace}/{slug}/commit/{sha}/statuses/build,
// GET|POST /repositories/{workspace}/{slug}/pullrequests/{id}/comments,
// PUT .../comments/{comment_id}. Credential: an access token (Bearer), or USER:APP_PASSWORD
// (Basic) with repository and pull request write access.
type Bitbucket struct{ c client }

var _ Forge = (*Bitbucket)(nil)

// NewBitbucket makes a client of base (default https://api.bitbucket.org/2.0). hc nil
// means a client with a 30 s timeout.
func NewBitbucket(base, credential string, hc *http.Client) *Bitbucket {
	user, pass, basic := strings.Cut(credential, ":")
	return &Bitbucket{c: newClient(base, "https://api.bitbucket.org/2.0", hc, func(r *http.Request) {
		if basic {
			r.SetBasicAuth(user, pass)
		} else {
			r.Header.Set("Authorization", "Bearer "+credential)
		}
	})}
}

var bitbucketStates = map[string]string{StatePending: "INPROGRESS", StateRunning: "INPROGRESS", StateSuccess: "SUCCESSFUL",
	StateFailure: "FAILED", StateCancelled: "STOPPED", StateSkipped: "STOPPED"}

// bitbucketKey is a status's key, unique per commit: the context, or its hash when longer
// than Bitbucket's 40 characters.
func bitbucketKey(context string) string {
	if len(context) <= 40 {
		return context
	}
	sum := sha256.Sum256([]byte(context))
	return "paved-" + hex.EncodeToString(sum[:])[:32]
}

// SetStatus posts a build status; Bitbucket keeps the latest per key.
func (b *Bitbucket) SetStatus(ctx context.Context, s Status) error {
	desc := s.Description
	if s.State == StateSkipped { // STOPPED says no more
		desc = strings.TrimSuffix(s.State+": "+desc, ": ")
	}
	body := map[string]string{"key": bitbucketKey(s.Context), "state": bitbucketStates[s.State], "name": s.Context,
		"url": s.URL, "description": truncate(desc, 255)}
	return b.c.do(ctx, http.MethodPost, fmt.Sprintf("/repositories/%s/commit/%s/statuses/build", s.Repo, s.SHA), body, nil)
}

type bitbucketComments struct {
	Values []struct {
		ID      int64 `json:"id"`
		Content struct {
			Raw string `json:"raw"`
		} `json:"content"`
	} `json:"values"`
	Next string `json:"next"`
}

// UpsertComment finds paved's comment among the pull request's, then edits or creates it.
func (b *Bitbucket) UpsertComment(ctx context.Context, c Comment) error {
	comments := fmt.Sprintf("/repositories/%s/pullrequests/%d/comments", c.Repo, c.PR)
	body := map[string]any{"content": map[string]string{"raw": c.Body}}
	next := comments + "?pagelen=100"
	for page := 0; next != "" && page < maxPages; page++ {
		var list bitbucketComments
		if err := b.c.do(ctx, http.MethodGet, next, nil, &list); err != nil {
			return err
		}
		for _, have := range list.Values {
			if strings.Contains(have.Content.Raw, c.Marker) {
				return b.c.do(ctx, http.MethodPut, fmt.Sprintf("%s/%d", comments, have.ID), body, nil)
			}
		}
		next = list.Next
		if next != "" && !strings.HasPrefix(next, b.c.base+"/") {
			return fmt.Errorf("forge: bitbucket's next page %q is not under %s: not following it with the credential", next, b.c.base)
		}
	}
	return b.c.do(ctx, http.MethodPost, comments, body, nil)
}
