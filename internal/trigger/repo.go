// Package trigger is the ingest layer: what starts a run. It holds the registered
// repositories, git access to them, and the one normalised Trigger that every webhook
// provider (github/, gitlab/, bitbucket/, generic/) produces, with its signature checks and
// its de-duplication key. inbox/ stores triggers durably and turns them into runs.
package trigger

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Repo is a git repository registered with paved. Webhooks name it by FullName; runs check
// out its commits from CloneURL.
type Repo struct {
	FullName      string    `json:"full_name"` // owner/name (GitLab: group/subgroup/name)
	CloneURL      string    `json:"clone_url"` // a URL git can clone, or a local path
	Team          string    `json:"team"`
	Provider      string    `json:"provider"`                 // github, gitlab, bitbucket or local
	WebhookSecret string    `json:"webhook_secret,omitempty"` // never returned by the API
	CreatedAt     time.Time `json:"created_at"`
}

// ErrInvalidRepo is wrapped by Validate's errors.
var ErrInvalidRepo = errors.New("trigger: invalid repo")

var fullNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$`)

// Validate checks a registration and says what to fix.
func (r *Repo) Validate() error {
	switch {
	case !fullNameRE.MatchString(r.FullName):
		return fmt.Errorf("%w: full_name %q must look like owner/name", ErrInvalidRepo, r.FullName)
	case r.CloneURL == "":
		return fmt.Errorf("%w: clone_url is required (a URL git can clone, or a local path)", ErrInvalidRepo)
	case r.Team == "":
		return fmt.Errorf("%w: team is required", ErrInvalidRepo)
	}
	switch r.Provider {
	case "github", "gitlab", "bitbucket", "local":
	default:
		return fmt.Errorf("%w: provider %q must be one of github, gitlab, bitbucket, local", ErrInvalidRepo, r.Provider)
	}
	return nil
}
