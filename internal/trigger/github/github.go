// Package github reads GitHub webhook deliveries: the X-Hub-Signature-256 check and the
// normalisation of push, pull_request and delete events into a trigger.Trigger. Other events
// (ping, create, issues, ...) are acknowledged and ignored.
package github

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/paved/paved/internal/trigger"
)

// Provider is GitHub's entry in the receiver's table.
var Provider = trigger.Provider{Name: "github", Parse: Parse, Verify: Verify}

// Verify checks X-Hub-Signature-256: "sha256=" + hex HMAC-SHA256 of the raw body.
func Verify(h trigger.Header, body []byte, secret string) error {
	return trigger.VerifyHMAC("X-Hub-Signature-256", h.Get("X-Hub-Signature-256"), "sha256=", body, secret)
}

type repository struct {
	FullName      string `json:"full_name"`
	CloneURL      string `json:"clone_url"`
	DefaultBranch string `json:"default_branch"`
}

type user struct {
	Login string `json:"login"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

type commit struct {
	ID       string   `json:"id"`
	Message  string   `json:"message"`
	Added    []string `json:"added"`
	Modified []string `json:"modified"`
	Removed  []string `json:"removed"`
	Author   struct {
		Name     string `json:"name"`
		Email    string `json:"email"`
		Username string `json:"username"`
	} `json:"author"`
}

type pushEvent struct {
	Ref        string      `json:"ref"`
	Before     string      `json:"before"`
	After      string      `json:"after"`
	Created    bool        `json:"created"`
	Deleted    bool        `json:"deleted"`
	Commits    []commit    `json:"commits"`
	HeadCommit *commit     `json:"head_commit"`
	Pusher     user        `json:"pusher"`
	Sender     user        `json:"sender"`
	Repository *repository `json:"repository"`
}

type branch struct {
	Ref  string      `json:"ref"`
	SHA  string      `json:"sha"`
	Repo *repository `json:"repo"`
}

type pullRequestEvent struct {
	Action      string `json:"action"`
	Number      int    `json:"number"`
	PullRequest *struct {
		Number  int    `json:"number"`
		Title   string `json:"title"`
		HTMLURL string `json:"html_url"`
		Draft   bool   `json:"draft"`
		Merged  bool   `json:"merged"`
		User    user   `json:"user"`
		Head    branch `json:"head"`
		Base    branch `json:"base"`
		Labels  []struct {
			Name string `json:"name"`
		} `json:"labels"`
	} `json:"pull_request"`
	Label *struct {
		Name string `json:"name"`
	} `json:"label"`
	Sender     user        `json:"sender"`
	Repository *repository `json:"repository"`
}

type deleteEvent struct {
	Ref        string      `json:"ref"`
	RefType    string      `json:"ref_type"`
	Sender     user        `json:"sender"`
	Repository *repository `json:"repository"`
}

// Parse normalises a delivery by its X-GitHub-Event header.
func Parse(h trigger.Header, body []byte) (trigger.Trigger, error) {
	event := h.Get("X-GitHub-Event")
	t := trigger.Trigger{Provider: "github", DeliveryID: h.Get("X-GitHub-Delivery")}
	switch event {
	case "push":
		var e pushEvent
		if err := unmarshal(event, body, &e); err != nil {
			return t, err
		}
		if err := setRepo(&t, e.Repository, event); err != nil {
			return t, err
		}
		return push(t, e)
	case "pull_request":
		var e pullRequestEvent
		if err := unmarshal(event, body, &e); err != nil {
			return t, err
		}
		if err := setRepo(&t, e.Repository, event); err != nil {
			return t, err
		}
		return pullRequest(t, e)
	case "delete":
		var e deleteEvent
		if err := unmarshal(event, body, &e); err != nil {
			return t, err
		}
		if err := setRepo(&t, e.Repository, event); err != nil {
			return t, err
		}
		t.Kind, t.Action = trigger.KindPush, trigger.ActionDeleted
		t.Ref, t.Branch = "refs/heads/"+e.Ref, e.Ref
		if e.RefType == "tag" {
			t.Kind, t.Ref, t.Branch, t.Tag = trigger.KindTag, "refs/tags/"+e.Ref, "", e.Ref
		}
		t.Author = trigger.Author{Login: e.Sender.Login}
		return t, t.Validate()
	case "":
		return t, fmt.Errorf("%w: no X-GitHub-Event header; is this a GitHub webhook?", trigger.ErrMalformed)
	}
	// Read the repository of an ignored event anyway, so that the receiver can check its
	// signature before it answers.
	var e struct {
		Repository *repository `json:"repository"`
	}
	if json.Unmarshal(body, &e) == nil && e.Repository != nil {
		t.Repo, t.CloneURL = e.Repository.FullName, e.Repository.CloneURL
	}
	switch event {
	case "create":
		return t, trigger.Ignored("GitHub sends a push event for every new branch or tag too; runs start from that")
	case "ping":
		return t, trigger.Ignored("ping: the webhook works")
	}
	return t, trigger.Ignored("GitHub event %q does not start runs (paved reads push, pull_request and delete)", event)
}

func push(t trigger.Trigger, e pushEvent) (trigger.Trigger, error) {
	t.Kind = trigger.KindPush
	t.Ref = e.Ref
	t.Branch, t.Tag = trigger.RefName(e.Ref)
	if t.Tag != "" {
		t.Kind = trigger.KindTag
	}
	if t.Branch == "" && t.Tag == "" {
		return t, fmt.Errorf("%w: push to %q, which is neither refs/heads/ nor refs/tags/", trigger.ErrMalformed, e.Ref)
	}
	t.SHA = e.After
	if !trigger.ZeroSHA(e.Before) {
		t.Before = e.Before
	}
	switch {
	case e.Deleted || e.After != "" && trigger.ZeroSHA(e.After):
		t.Action, t.SHA = trigger.ActionDeleted, ""
	case e.Created:
		t.Action = trigger.ActionCreated
	}
	t.Author = trigger.Author{Name: e.Pusher.Name, Email: e.Pusher.Email, Login: e.Sender.Login}
	if e.HeadCommit != nil {
		t.Message = trigger.FirstLine(e.HeadCommit.Message)
	}
	// GitHub lists at most 20 commits; with more, the file list would be partial, and a
	// partial list must not decide path filters: leave it unknown.
	if len(e.Commits) > 0 && len(e.Commits) < 20 {
		files := make([]trigger.CommitFiles, len(e.Commits))
		for i, c := range e.Commits {
			files[i] = trigger.CommitFiles{Added: c.Added, Modified: c.Modified, Removed: c.Removed}
		}
		t.Changes = trigger.MergeChanges(files)
	}
	return t, t.Validate()
}

func pullRequest(t trigger.Trigger, e pullRequestEvent) (trigger.Trigger, error) {
	pr := e.PullRequest
	if pr == nil {
		return t, fmt.Errorf("%w: pull_request event without pull_request", trigger.ErrMalformed)
	}
	switch e.Action {
	case "opened", "synchronize", "reopened", "labeled":
		t.Action = e.Action
	case "closed":
		t.Action = trigger.ActionClosed
		if pr.Merged {
			t.Action = trigger.ActionMerged
		}
	default:
		return t, trigger.Ignored("pull_request action %q does not start runs (opened, synchronize, reopened, closed and labeled do)", e.Action)
	}
	t.Kind = trigger.KindPullRequest
	number := pr.Number
	if number == 0 {
		number = e.Number
	}
	t.Ref = fmt.Sprintf("refs/pull/%d/head", number)
	t.Branch, t.SHA = pr.Base.Ref, pr.Head.SHA
	t.Author = trigger.Author{Login: pr.User.Login, Name: pr.User.Name, Email: pr.User.Email}
	t.PR = &trigger.PR{
		Number: number, Title: pr.Title, URL: pr.HTMLURL, Draft: pr.Draft,
		SourceBranch: pr.Head.Ref, TargetBranch: pr.Base.Ref, BaseSHA: pr.Base.SHA,
	}
	if pr.Head.Repo != nil && pr.Base.Repo != nil && !strings.EqualFold(pr.Head.Repo.FullName, pr.Base.Repo.FullName) {
		t.PR.Fork = true
	}
	for _, l := range pr.Labels {
		t.PR.Labels = append(t.PR.Labels, l.Name)
	}
	if e.Action == "labeled" && e.Label != nil {
		t.PR.Label = e.Label.Name
	}
	return t, t.Validate()
}

func setRepo(t *trigger.Trigger, r *repository, event string) error {
	if r == nil || r.FullName == "" {
		return fmt.Errorf("%w: %s event without repository.full_name", trigger.ErrMalformed, event)
	}
	t.Repo, t.CloneURL, t.DefaultBranch = r.FullName, r.CloneURL, r.DefaultBranch
	return nil
}

func unmarshal(event string, body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %s event: %v", trigger.ErrMalformed, event, err)
	}
	return nil
}
