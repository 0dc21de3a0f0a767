// Package trigger is the ingest layer: what starts a run. It holds the registered
// repositories, git access to them, and the one normalised Trigger that every webhook
// provider (github/, gitlab/, bitbucket/, generic/) produces, with its signature checks and
// its de-duplication key. inbox/ stores triggers durably and turns them into runs.
package trigger

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"
)

// Repo is a git repository registered with paved. Webhooks name it by FullName; runs check
// out its commits from CloneURL.
type Repo struct {
	FullName      string `json:"full_name"` // owner/name (GitLab: group/subgroup/name)
	CloneURL      string `json:"clone_url"` // a URL git can clone, or a local path
	Team          string `json:"team"`
	Provider      string `json:"provider"`                 // github, gitlab, bitbucket or local
	WebhookSecret string `json:"webhook_secret,omitempty"` // never returned by the API
	// ForgeCredential names the secret (not its value) holding the token paved reports to
	// the forge with: commit statuses and pull request comments (internal/forge). Empty:
	// nothing is reported. Bitbucket takes USER:APP_PASSWORD as well as a token.
	ForgeCredential string `json:"forge_credential,omitempty"`
	// ForgeAPI is the forge's API base URL, for GitHub Enterprise or a self-hosted GitLab
	// (https://gitlab.example.com/api/v4). Empty: the public forge's.
	ForgeAPI  string    `json:"forge_api,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// ErrInvalidRepo is wrapped by Validate's errors.
var ErrInvalidRepo = errors.New("trigger: invalid repo")

var secretNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

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
	if r.ForgeCredential != "" && !secretNameRE.MatchString(r.ForgeCredential) {
		return fmt.Errorf("%w: forge_credential %q must be a secret's name (letters, digits and _), not its value", ErrInvalidRepo, r.ForgeCredential)
	}
	if r.ForgeCredential != "" && r.Provider == "local" {
		return fmt.Errorf("%w: forge_credential is for a github, gitlab or bitbucket repo; set provider", ErrInvalidRepo)
	}
	if r.ForgeAPI != "" {
		if u, err := url.Parse(r.ForgeAPI); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("%w: forge_api %q must be an http(s) URL such as https://gitlab.example.com/api/v4", ErrInvalidRepo, r.ForgeAPI)
		}
	}
	return nil
}
