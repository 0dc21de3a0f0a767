package trigger

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Trigger kinds. A deleted branch or tag keeps its kind (push or tag) with Action "deleted".
const (
	KindPush        = "push"
	KindTag         = "tag"
	KindPullRequest = "pull_request"
	KindManual      = "manual"
	KindCron        = "cron"
)

// Actions. Pushes: created, deleted or "" (an update). Pull requests: opened, synchronize
// (new commits), reopened, closed, merged, labeled; providers' own words are mapped to these.
const (
	ActionCreated     = "created"
	ActionDeleted     = "deleted"
	ActionOpened      = "opened"
	ActionSynchronize = "synchronize"
	ActionReopened    = "reopened"
	ActionClosed      = "closed"
	ActionMerged      = "merged"
	ActionLabeled     = "labeled"
)

// Trigger is one event that may start runs, normalised from whichever provider sent it.
// Its JSON field names are part of the API (GET /api/v1/triggers) and documented in
// docs/webhooks.md.
type Trigger struct {
	ID         string    `json:"id"`       // set when the trigger enters the inbox
	Provider   string    `json:"provider"` // github, gitlab, bitbucket, generic, api or cron
	Kind       string    `json:"kind"`     // push, tag, pull_request, manual, cron
	Action     string    `json:"action,omitempty"`
	Repo       string    `json:"repo"` // full name: owner/name, GitLab group/subgroup/name
	CloneURL   string    `json:"clone_url,omitempty"`
	Ref        string    `json:"ref,omitempty"` // refs/heads/main, refs/tags/v1, refs/pull/7/head
	Branch     string    `json:"branch,omitempty"`
	Tag        string    `json:"tag,omitempty"`
	SHA        string    `json:"sha,omitempty"`
	Before     string    `json:"before,omitempty"` // the ref's previous commit; empty when created
	PR         *PR       `json:"pull_request,omitempty"`
	Author     Author    `json:"author"`
	Message    string    `json:"message,omitempty"` // the head commit's message
	Changes    *Changes  `json:"changes,omitempty"` // nil when the payload does not list files
	DeliveryID string    `json:"delivery_id,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
	// Schedule is the cron expression of a cron trigger.
	Schedule string `json:"schedule,omitempty"`
	// DefaultBranch is the repository's default branch, where the forge's payload says it
	// (GitHub, GitLab); runs of it are in the scheduler's default priority class.
	DefaultBranch string `json:"default_branch,omitempty"`
}

// PR is what a pull (merge) request trigger knows of it. Trigger.Branch is the target.
type PR struct {
	Number       int      `json:"number"`
	Title        string   `json:"title,omitempty"`
	URL          string   `json:"url,omitempty"`
	SourceBranch string   `json:"source_branch"`
	TargetBranch string   `json:"target_branch"`
	BaseSHA      string   `json:"base_sha,omitempty"`
	Labels       []string `json:"labels,omitempty"`
	Label        string   `json:"label,omitempty"` // the label added, for action labeled
	Draft        bool     `json:"draft,omitempty"`
	Fork         bool     `json:"fork,omitempty"` // the source branch is in another repository
}

// Author is who caused the trigger: the pusher or the pull request's author.
type Author struct {
	Name  string `json:"name,omitempty"`
	Login string `json:"login,omitempty"`
	Email string `json:"email,omitempty"`
}

// Changes are the files a push changed, from the payload's commits.
type Changes struct {
	Added    []string `json:"added"`
	Modified []string `json:"modified"`
	Removed  []string `json:"removed"`
}

// Paths is every changed file once, sorted; nil when unknown.
func (c *Changes) Paths() []string {
	if c == nil {
		return nil
	}
	all := slices.Concat(c.Added, c.Modified, c.Removed)
	slices.Sort(all)
	return slices.Compact(all)
}

// Deleted reports whether the trigger is a branch or tag deletion: nothing to build.
func (t *Trigger) Deleted() bool { return t.Action == ActionDeleted }

// DedupKey identifies "the same event" across deliveries: two triggers with the same key
// inside the dedup window start runs once. The ref is part of it, so that one commit pushed
// to two branches is two triggers; the label is, so that adding two labels is two.
func (t *Trigger) DedupKey() string {
	label := ""
	if t.PR != nil {
		label = t.PR.Label
	}
	h := sha256.New()
	for _, s := range []string{t.Provider, t.Repo, t.Ref, t.SHA, t.Kind, t.Action, label, t.Schedule} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Validate checks what every parser must produce, so that routing can rely on it. Its
// errors wrap ErrMalformed.
func (t *Trigger) Validate() error {
	switch {
	case t.Repo == "":
		return fmt.Errorf("%w: no repository full name in the payload", ErrMalformed)
	case t.Kind == "":
		return fmt.Errorf("%w: no trigger kind", ErrMalformed)
	case t.Kind == KindPullRequest && t.PR == nil:
		return fmt.Errorf("%w: a pull_request trigger needs its pull request", ErrMalformed)
	case !t.Deleted() && t.Kind != KindManual && t.Kind != KindCron && t.SHA == "":
		return fmt.Errorf("%w: no commit sha in the payload", ErrMalformed)
	}
	return nil
}

// IgnoredError is a delivery paved understood and does nothing with (ping, issues): the
// receiver answers 202 with the reason, so the sender does not retry.
type IgnoredError struct{ Reason string }

func (e *IgnoredError) Error() string { return "trigger: ignored: " + e.Reason }

// Ignored returns an *IgnoredError.
func Ignored(format string, args ...any) error {
	return &IgnoredError{Reason: fmt.Sprintf(format, args...)}
}

// ErrMalformed is wrapped by parsers for a body that is not the JSON the event needs (400).
var ErrMalformed = errors.New("trigger: malformed payload")

// ErrSignature is wrapped when a delivery is unsigned or badly signed (401).
var ErrSignature = errors.New("trigger: bad signature")

// VerifyHMAC checks a hex HMAC-SHA256 of body under secret, optionally after a prefix
// such as "sha256=", in constant time. header names the header for the error message.
func VerifyHMAC(header, got, prefix string, body []byte, secret string) error {
	if secret == "" {
		return fmt.Errorf("%w: the repo has no webhook_secret; register it with one (POST /api/v1/repos) and set the same secret at the provider", ErrSignature)
	}
	if got == "" {
		return fmt.Errorf("%w: no %s header; set a secret on the webhook at the provider", ErrSignature, header)
	}
	hexSig, ok := strings.CutPrefix(got, prefix)
	if !ok {
		return fmt.Errorf("%w: %s must start with %q", ErrSignature, header, prefix)
	}
	sig, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("%w: %s is not hex", ErrSignature, header)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return fmt.Errorf("%w: %s does not match the body; check that the webhook's secret equals the repo's webhook_secret", ErrSignature, header)
	}
	return nil
}

// SignHMAC returns prefix + hex HMAC-SHA256 of body under secret (for tests and senders).
func SignHMAC(prefix string, body []byte, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return prefix + hex.EncodeToString(mac.Sum(nil))
}

// VerifyToken compares a shared token (GitLab's X-Gitlab-Token) in constant time.
func VerifyToken(header, got, secret string) error {
	if secret == "" {
		return fmt.Errorf("%w: the repo has no webhook_secret; register it with one (POST /api/v1/repos) and set the same token at the provider", ErrSignature)
	}
	if got == "" {
		return fmt.Errorf("%w: no %s header; set a secret token on the webhook at the provider", ErrSignature, header)
	}
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(secret))
	if !hmac.Equal(a[:], b[:]) {
		return fmt.Errorf("%w: %s does not match the repo's webhook_secret", ErrSignature, header)
	}
	return nil
}

// Provider is one webhook sender: how to check a delivery and how to read it.
type Provider struct {
	Name string
	// Parse normalises a delivery. It returns the trigger with at least Repo set, or an
	// error: *IgnoredError (Repo set when the payload names one), or ErrMalformed wrapped.
	// It must not panic on any input (each provider has a fuzz target).
	Parse func(h Header, body []byte) (Trigger, error)
	// Verify checks the delivery's signature or token against the repo's secret.
	Verify func(h Header, body []byte, secret string) error
}

// Header is the part of http.Header providers read (case-insensitive Get).
type Header interface{ Get(string) string }

// RefName splits a git ref into a branch or a tag.
func RefName(ref string) (branch, tag string) {
	if b, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
		return b, ""
	}
	if t, ok := strings.CutPrefix(ref, "refs/tags/"); ok {
		return "", t
	}
	return "", ""
}

// ZeroSHA reports whether sha is empty or all zeros (providers' "no commit").
func ZeroSHA(sha string) bool { return strings.Trim(sha, "0") == "" }

// FirstLine is the subject of a commit message.
func FirstLine(msg string) string {
	s, _, _ := strings.Cut(strings.TrimSpace(msg), "\n")
	return strings.TrimSpace(s)
}

// MergeChanges folds the files of a push's commits, oldest first, into one set.
func MergeChanges(commits []CommitFiles) *Changes {
	if len(commits) == 0 {
		return nil
	}
	state := map[string]string{}
	for _, c := range commits {
		for _, p := range c.Added {
			if state[p] == "removed" {
				state[p] = "modified"
			} else {
				state[p] = "added"
			}
		}
		for _, p := range c.Modified {
			if state[p] != "added" {
				state[p] = "modified"
			}
		}
		for _, p := range c.Removed {
			if state[p] == "added" {
				delete(state, p)
			} else {
				state[p] = "removed"
			}
		}
	}
	ch := &Changes{Added: []string{}, Modified: []string{}, Removed: []string{}}
	for p, s := range state {
		switch s {
		case "added":
			ch.Added = append(ch.Added, p)
		case "modified":
			ch.Modified = append(ch.Modified, p)
		case "removed":
			ch.Removed = append(ch.Removed, p)
		}
	}
	slices.Sort(ch.Added)
	slices.Sort(ch.Modified)
	slices.Sort(ch.Removed)
	return ch
}

// CommitFiles is the file lists of one commit of a push payload.
type CommitFiles struct {
	Added, Modified, Removed []string
}
