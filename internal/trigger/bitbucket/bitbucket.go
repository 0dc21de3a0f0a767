// Package bitbucket reads Bitbucket Cloud webhook deliveries: the X-Hub-Signature check and
// the normalisation of repo:push and pullrequest:* events into a trigger.Trigger. Other
// events (comments, commit statuses) are acknowledged and ignored.
package bitbucket

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/paved/paved/internal/trigger"
)

// Provider is Bitbucket Cloud's entry in the receiver's table.
var Provider = trigger.Provider{Name: "bitbucket", Parse: Parse, Verify: Verify}

// Verify checks X-Hub-Signature: "sha256=" + hex HMAC-SHA256 of the raw body.
func Verify(h trigger.Header, body []byte, secret string) error {
	return trigger.VerifyHMAC("X-Hub-Signature", h.Get("X-Hub-Signature"), "sha256=", body, secret)
}

type link struct {
	Href string `json:"href"`
}

type repository struct {
	FullName string `json:"full_name"`
	Links    struct {
		HTML link `json:"html"`
	} `json:"links"`
}

type account struct {
	Username    string `json:"username"`
	Nickname    string `json:"nickname"`
	DisplayName string `json:"display_name"`
}

func (a account) login() string {
	if a.Username != "" {
		return a.Username
	}
	return a.Nickname
}

type ref struct {
	Type   string `json:"type"` // branch or tag
	Name   string `json:"name"`
	Target struct {
		Hash    string `json:"hash"`
		Message string `json:"message"`
		Author  struct {
			Raw string `json:"raw"` // "Name <email>"
		} `json:"author"`
	} `json:"target"`
}

type pushEvent struct {
	Push struct {
		Changes []struct {
			Old     *ref `json:"old"`
			New     *ref `json:"new"`
			Created bool `json:"created"`
			Closed  bool `json:"closed"`
		} `json:"changes"`
	} `json:"push"`
	Actor      account     `json:"actor"`
	Repository *repository `json:"repository"`
}

type endpoint struct {
	Commit struct {
		Hash string `json:"hash"`
	} `json:"commit"`
	Branch struct {
		Name string `json:"name"`
	} `json:"branch"`
	Repository *repository `json:"repository"`
}

type pullRequestEvent struct {
	PullRequest *struct {
		ID    int    `json:"id"`
		Title string `json:"title"`
		Links struct {
			HTML link `json:"html"`
		} `json:"links"`
		Source      endpoint `json:"source"`
		Destination endpoint `json:"destination"`
		Author      account  `json:"author"`
	} `json:"pullrequest"`
	Actor      account     `json:"actor"`
	Repository *repository `json:"repository"`
}

// Parse normalises a delivery by its X-Event-Key header. A push that moves several refs
// carries one change per ref; paved reads the first (Bitbucket sends one per ref in practice).
func Parse(h trigger.Header, body []byte) (trigger.Trigger, error) {
	event := h.Get("X-Event-Key")
	t := trigger.Trigger{Provider: "bitbucket", DeliveryID: h.Get("X-Request-UUID")}
	if event == "" {
		return t, fmt.Errorf("%w: no X-Event-Key header; is this a Bitbucket Cloud webhook?", trigger.ErrMalformed)
	}
	var head struct {
		Repository *repository `json:"repository"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return t, fmt.Errorf("%w: %s: %v", trigger.ErrMalformed, event, err)
	}
	if r := head.Repository; r != nil {
		t.Repo = r.FullName
		if r.Links.HTML.Href != "" {
			t.CloneURL = r.Links.HTML.Href + ".git"
		}
	}
	switch event {
	case "repo:push":
		var e pushEvent
		if err := json.Unmarshal(body, &e); err != nil {
			return t, fmt.Errorf("%w: %s: %v", trigger.ErrMalformed, event, err)
		}
		return push(t, e)
	case "pullrequest:created", "pullrequest:updated", "pullrequest:fulfilled", "pullrequest:rejected":
		var e pullRequestEvent
		if err := json.Unmarshal(body, &e); err != nil {
			return t, fmt.Errorf("%w: %s: %v", trigger.ErrMalformed, event, err)
		}
		return pullRequest(t, event, e)
	}
	return t, trigger.Ignored("Bitbucket event %q does not start runs (repo:push and pullrequest:created/updated/fulfilled/rejected do)", event)
}

func push(t trigger.Trigger, e pushEvent) (trigger.Trigger, error) {
	if t.Repo == "" {
		return t, fmt.Errorf("%w: repo:push without repository.full_name", trigger.ErrMalformed)
	}
	if len(e.Push.Changes) == 0 {
		return t, fmt.Errorf("%w: repo:push without push.changes", trigger.ErrMalformed)
	}
	c := e.Push.Changes[0]
	r := c.New
	if r == nil {
		r = c.Old
		t.Action = trigger.ActionDeleted
	} else if c.Old == nil || c.Created {
		t.Action = trigger.ActionCreated
	}
	if r == nil {
		return t, fmt.Errorf("%w: repo:push change without old or new", trigger.ErrMalformed)
	}
	switch r.Type {
	case "branch", "named_branch":
		t.Kind, t.Ref, t.Branch = trigger.KindPush, "refs/heads/"+r.Name, r.Name
	case "tag", "annotated_tag":
		t.Kind, t.Ref, t.Tag = trigger.KindTag, "refs/tags/"+r.Name, r.Name
	default:
		return t, fmt.Errorf("%w: repo:push of a %q, neither branch nor tag", trigger.ErrMalformed, r.Type)
	}
	if c.Old != nil && c.New != nil {
		t.Before = c.Old.Target.Hash
	}
	if t.Action == trigger.ActionDeleted {
		t.Before = c.Old.Target.Hash
	} else {
		t.SHA = r.Target.Hash
		t.Message = trigger.FirstLine(r.Target.Message)
	}
	t.Author = trigger.Author{Login: e.Actor.login(), Name: e.Actor.DisplayName}
	if name, email, ok := strings.Cut(r.Target.Author.Raw, " <"); ok && t.Action != trigger.ActionDeleted {
		t.Author.Email = strings.TrimSuffix(email, ">")
		if t.Author.Name == "" {
			t.Author.Name = name
		}
	}
	// Bitbucket's push payload lists commits without their files: changes stay unknown and
	// the router asks git (before..sha).
	return t, t.Validate()
}

func pullRequest(t trigger.Trigger, event string, e pullRequestEvent) (trigger.Trigger, error) {
	pr := e.PullRequest
	if pr == nil || t.Repo == "" {
		return t, fmt.Errorf("%w: %s without pullrequest or repository", trigger.ErrMalformed, event)
	}
	t.Action = map[string]string{
		"pullrequest:created": trigger.ActionOpened, "pullrequest:updated": trigger.ActionSynchronize,
		"pullrequest:fulfilled": trigger.ActionMerged, "pullrequest:rejected": trigger.ActionClosed,
	}[event]
	t.Kind = trigger.KindPullRequest
	t.Ref = fmt.Sprintf("refs/pull-requests/%d/from", pr.ID)
	t.Branch, t.SHA = pr.Destination.Branch.Name, pr.Source.Commit.Hash
	t.Author = trigger.Author{Login: pr.Author.login(), Name: pr.Author.DisplayName}
	t.PR = &trigger.PR{
		Number: pr.ID, Title: pr.Title, URL: pr.Links.HTML.Href,
		SourceBranch: pr.Source.Branch.Name, TargetBranch: pr.Destination.Branch.Name,
		BaseSHA: pr.Destination.Commit.Hash,
	}
	if s, d := pr.Source.Repository, pr.Destination.Repository; s != nil && d != nil && !strings.EqualFold(s.FullName, d.FullName) {
		t.PR.Fork = true
	}
	return t, t.Validate()
}
