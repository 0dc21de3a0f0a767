// Package gitlab reads GitLab webhook deliveries: the X-Gitlab-Token check and the
// normalisation of Push Hook, Tag Push Hook and Merge Request Hook events into a
// trigger.Trigger. Other events (notes, issues, pipelines) are acknowledged and ignored.
package gitlab

import (
	"encoding/json"
	"fmt"

	"github.com/paved/paved/internal/trigger"
)

// Provider is GitLab's entry in the receiver's table.
var Provider = trigger.Provider{Name: "gitlab", Parse: Parse, Verify: Verify}

// Verify checks X-Gitlab-Token, the secret token set on the webhook, in constant time.
// (GitLab sends the token itself, not a signature over the body.)
func Verify(h trigger.Header, _ []byte, secret string) error {
	return trigger.VerifyToken("X-Gitlab-Token", h.Get("X-Gitlab-Token"), secret)
}

type project struct {
	PathWithNamespace string `json:"path_with_namespace"`
	GitHTTPURL        string `json:"git_http_url"`
	DefaultBranch     string `json:"default_branch"`
}

type commit struct {
	ID       string   `json:"id"`
	Message  string   `json:"message"`
	Added    []string `json:"added"`
	Modified []string `json:"modified"`
	Removed  []string `json:"removed"`
}

type pushEvent struct {
	ObjectKind   string   `json:"object_kind"`
	Ref          string   `json:"ref"`
	Before       string   `json:"before"`
	After        string   `json:"after"`
	CheckoutSHA  string   `json:"checkout_sha"`
	UserName     string   `json:"user_name"`
	UserUsername string   `json:"user_username"`
	UserEmail    string   `json:"user_email"`
	Commits      []commit `json:"commits"`
	TotalCommits int      `json:"total_commits_count"`
	Project      *project `json:"project"`
}

type label struct {
	Title string `json:"title"`
}

type mergeRequestEvent struct {
	ObjectKind string `json:"object_kind"`
	User       struct {
		Name     string `json:"name"`
		Username string `json:"username"`
		Email    string `json:"email"`
	} `json:"user"`
	Project *project `json:"project"`
	Labels  []label  `json:"labels"`
	Changes struct {
		Labels *struct {
			Previous []label `json:"previous"`
			Current  []label `json:"current"`
		} `json:"labels"`
	} `json:"changes"`
	Attrs *struct {
		IID             int                          `json:"iid"`
		Title           string                       `json:"title"`
		URL             string                       `json:"url"`
		Action          string                       `json:"action"`
		OldRev          string                       `json:"oldrev"`
		SourceBranch    string                       `json:"source_branch"`
		TargetBranch    string                       `json:"target_branch"`
		SourceProjectID int                          `json:"source_project_id"`
		TargetProjectID int                          `json:"target_project_id"`
		WorkInProgress  bool                         `json:"work_in_progress"`
		Draft           bool                         `json:"draft"`
		LastCommit      struct{ ID, Message string } `json:"last_commit"`
	} `json:"object_attributes"`
}

// Parse normalises a delivery by its X-Gitlab-Event header (object_kind decides when the
// header and the body disagree, as for tag deletions sent as Push Hook).
func Parse(h trigger.Header, body []byte) (trigger.Trigger, error) {
	event := h.Get("X-Gitlab-Event")
	t := trigger.Trigger{Provider: "gitlab", DeliveryID: h.Get("X-Gitlab-Event-UUID")}
	if event == "" {
		return t, fmt.Errorf("%w: no X-Gitlab-Event header; is this a GitLab webhook?", trigger.ErrMalformed)
	}
	var head struct {
		ObjectKind string   `json:"object_kind"`
		Project    *project `json:"project"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return t, fmt.Errorf("%w: %s: %v", trigger.ErrMalformed, event, err)
	}
	if head.Project != nil {
		t.Repo, t.CloneURL, t.DefaultBranch = head.Project.PathWithNamespace, head.Project.GitHTTPURL, head.Project.DefaultBranch
	}
	switch head.ObjectKind {
	case "push", "tag_push":
		var e pushEvent
		if err := json.Unmarshal(body, &e); err != nil {
			return t, fmt.Errorf("%w: %s: %v", trigger.ErrMalformed, event, err)
		}
		return push(t, e)
	case "merge_request":
		var e mergeRequestEvent
		if err := json.Unmarshal(body, &e); err != nil {
			return t, fmt.Errorf("%w: %s: %v", trigger.ErrMalformed, event, err)
		}
		return mergeRequest(t, e)
	case "":
		return t, fmt.Errorf("%w: %s without object_kind", trigger.ErrMalformed, event)
	}
	return t, trigger.Ignored("GitLab %q (object_kind %s) does not start runs (push, tag push and merge request events do)", event, head.ObjectKind)
}

func push(t trigger.Trigger, e pushEvent) (trigger.Trigger, error) {
	if t.Repo == "" {
		return t, fmt.Errorf("%w: push without project.path_with_namespace", trigger.ErrMalformed)
	}
	t.Kind, t.Ref = trigger.KindPush, e.Ref
	t.Branch, t.Tag = trigger.RefName(e.Ref)
	if t.Tag != "" {
		t.Kind = trigger.KindTag
	}
	if t.Branch == "" && t.Tag == "" {
		return t, fmt.Errorf("%w: push to %q, which is neither refs/heads/ nor refs/tags/", trigger.ErrMalformed, e.Ref)
	}
	t.SHA = e.After
	if e.CheckoutSHA != "" {
		t.SHA = e.CheckoutSHA // an annotated tag's after is the tag object; checkout_sha the commit
	}
	if !trigger.ZeroSHA(e.Before) {
		t.Before = e.Before
	}
	switch {
	case e.After != "" && trigger.ZeroSHA(e.After):
		t.Action, t.SHA = trigger.ActionDeleted, ""
	case e.Before != "" && trigger.ZeroSHA(e.Before):
		t.Action = trigger.ActionCreated
	}
	t.Author = trigger.Author{Name: e.UserName, Login: e.UserUsername, Email: e.UserEmail}
	for _, c := range e.Commits {
		if c.ID == t.SHA {
			t.Message = trigger.FirstLine(c.Message)
		}
	}
	// GitLab lists at most 20 commits; with more, leave the changed files unknown.
	if len(e.Commits) > 0 && len(e.Commits) >= e.TotalCommits {
		files := make([]trigger.CommitFiles, len(e.Commits))
		for i, c := range e.Commits {
			files[i] = trigger.CommitFiles{Added: c.Added, Modified: c.Modified, Removed: c.Removed}
		}
		t.Changes = trigger.MergeChanges(files)
	}
	return t, t.Validate()
}

func mergeRequest(t trigger.Trigger, e mergeRequestEvent) (trigger.Trigger, error) {
	a := e.Attrs
	if a == nil || t.Repo == "" {
		return t, fmt.Errorf("%w: merge request without object_attributes or project", trigger.ErrMalformed)
	}
	var label string
	switch a.Action {
	case "open":
		t.Action = trigger.ActionOpened
	case "reopen":
		t.Action = trigger.ActionReopened
	case "close":
		t.Action = trigger.ActionClosed
	case "merge":
		t.Action = trigger.ActionMerged
	case "update":
		switch {
		case a.OldRev != "":
			t.Action = trigger.ActionSynchronize
		case e.Changes.Labels != nil:
			label = addedLabel(e.Changes.Labels.Previous, e.Changes.Labels.Current)
			if label == "" {
				return t, trigger.Ignored("merge request update removed labels only")
			}
			t.Action = trigger.ActionLabeled
		default:
			return t, trigger.Ignored("merge request update without new commits or labels (title, description, draft, ...)")
		}
	default:
		return t, trigger.Ignored("merge request action %q does not start runs", a.Action)
	}
	t.Kind = trigger.KindPullRequest
	t.Ref = fmt.Sprintf("refs/merge-requests/%d/head", a.IID)
	t.Branch, t.SHA = a.TargetBranch, a.LastCommit.ID
	t.Message = trigger.FirstLine(a.LastCommit.Message)
	t.Author = trigger.Author{Name: e.User.Name, Login: e.User.Username, Email: e.User.Email}
	t.PR = &trigger.PR{
		Number: a.IID, Title: a.Title, URL: a.URL, Draft: a.Draft || a.WorkInProgress, Label: label,
		SourceBranch: a.SourceBranch, TargetBranch: a.TargetBranch,
		Fork: a.SourceProjectID != a.TargetProjectID,
	}
	for _, l := range e.Labels {
		t.PR.Labels = append(t.PR.Labels, l.Title)
	}
	return t, t.Validate()
}

func addedLabel(prev, cur []label) string {
	had := map[string]bool{}
	for _, l := range prev {
		had[l.Title] = true
	}
	for _, l := range cur {
		if !had[l.Title] {
			return l.Title
		}
	}
	return ""
}
