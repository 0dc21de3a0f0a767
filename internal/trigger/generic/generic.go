// Package generic reads deliveries from any sender that can compute an HMAC: the body is a
// small JSON trigger (docs/webhooks.md), signed in X-Paved-Signature-256 like GitHub's.
package generic

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/paved/paved/internal/trigger"
)

// Provider is the generic receiver's entry in the receiver's table.
var Provider = trigger.Provider{Name: "generic", Parse: Parse, Verify: Verify}

// Header names.
const (
	SignatureHeader = "X-Paved-Signature-256" // "sha256=" + hex HMAC-SHA256 of the raw body
	DeliveryHeader  = "X-Paved-Delivery"      // optional; a redelivery with the same id is a duplicate
)

// Verify checks X-Paved-Signature-256.
func Verify(h trigger.Header, body []byte, secret string) error {
	return trigger.VerifyHMAC(SignatureHeader, h.Get(SignatureHeader), "sha256=", body, secret)
}

// payload is what a generic sender posts. Ref is a full ref (refs/heads/main, refs/tags/v1)
// or a branch name; kind defaults from it.
type payload struct {
	Repo    string           `json:"repo"`
	Kind    string           `json:"kind"`
	Action  string           `json:"action"`
	Ref     string           `json:"ref"`
	SHA     string           `json:"sha"`
	Before  string           `json:"before"`
	Author  trigger.Author   `json:"author"`
	Message string           `json:"message"`
	Changes *trigger.Changes `json:"changes"`
	PR      *trigger.PR      `json:"pull_request"`
}

// Parse reads the JSON body; unknown fields are an error, so a typo is not silently lost.
func Parse(h trigger.Header, body []byte) (trigger.Trigger, error) {
	t := trigger.Trigger{Provider: "generic", DeliveryID: h.Get(DeliveryHeader)}
	var p payload
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return t, fmt.Errorf("%w: %v (fields: repo, kind, action, ref, sha, before, author, message, changes, pull_request; see docs/webhooks.md)", trigger.ErrMalformed, err)
	}
	t.Repo = p.Repo
	ref := p.Ref
	if ref != "" && !bytes.HasPrefix([]byte(ref), []byte("refs/")) {
		ref = "refs/heads/" + ref
	}
	t.Ref, t.SHA, t.Before, t.Author, t.Message, t.Changes, t.PR, t.Action =
		ref, p.SHA, p.Before, p.Author, trigger.FirstLine(p.Message), p.Changes, p.PR, p.Action
	t.Branch, t.Tag = trigger.RefName(ref)
	t.Kind = p.Kind
	switch {
	case t.Kind == "" && t.Tag != "":
		t.Kind = trigger.KindTag
	case t.Kind == "":
		t.Kind = trigger.KindPush
	}
	switch t.Kind {
	case trigger.KindPush, trigger.KindTag, trigger.KindManual:
		if t.PR != nil {
			return t, fmt.Errorf("%w: pull_request is only for kind pull_request", trigger.ErrMalformed)
		}
	case trigger.KindPullRequest:
		if t.PR == nil || t.PR.TargetBranch == "" {
			return t, fmt.Errorf("%w: kind pull_request needs pull_request.target_branch", trigger.ErrMalformed)
		}
		t.Branch = t.PR.TargetBranch
		if t.Action == "" {
			t.Action = trigger.ActionOpened
		}
	default:
		return t, fmt.Errorf("%w: kind %q must be push, tag, pull_request or manual", trigger.ErrMalformed, t.Kind)
	}
	return t, t.Validate()
}
