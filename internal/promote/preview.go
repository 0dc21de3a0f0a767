package promote

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/schedule"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/trigger"
)

// PreviewPrefix names the ephemeral environments of pull requests: pr-<number>.
const PreviewPrefix = "pr-"

// DefaultPreviewLabel is the pull request label that asks for a preview.
const DefaultPreviewLabel = "preview"

// Previews configures pull request previews (the previews: map of the environments config).
type Previews struct {
	// Label on a pull request deploys its runs to pr-<number> (default preview); Disabled
	// turns previews off.
	Label    string `yaml:"label" json:"label"`
	Disabled bool   `yaml:"disabled" json:"disabled,omitempty"`
}

// PreviewEnvironment is the preview environment of a run: pr-<number> for a pull request
// run carrying label; ok is false for any other run.
func PreviewEnvironment(info *run.Info, label string) (string, bool) {
	if info == nil || info.Trigger.Kind != trigger.KindPullRequest || info.Trigger.PRNumber <= 0 || !slices.Contains(info.Trigger.Labels, label) {
		return "", false
	}
	return PreviewPrefix + strconv.Itoa(info.Trigger.PRNumber), true
}

// PreviewKind wraps the deploy: stage kind: a run of a pull request with the preview label
// deploys to its own environment pr-<number> (a port of its own, a rolling update, one
// replica unless the stage asks for more) instead of the stage's environment. Each new push
// to the pull request is a new run, and so updates the same preview.
type PreviewKind struct {
	Next  schedule.Kind
	Label string
}

var _ schedule.Kind = PreviewKind{}

// Run deploys to the preview environment when the run is a labelled pull request's.
func (k PreviewKind) Run(ctx context.Context, job schedule.KindJob, rec schedule.KindRecorder) (schedule.KindResult, error) {
	env, ok := PreviewEnvironment(job.Info, k.Label)
	if !ok || job.Def == nil || job.Def.Deploy == nil {
		return k.Next.Run(ctx, job, rec)
	}
	def := *job.Def
	d := *def.Deploy
	rec.Log(fmt.Sprintf("paved: pull request #%d has the %s label: deploying to its preview environment %s instead of %s",
		job.Info.Trigger.PRNumber, k.Label, env, d.Environment))
	// A preview is one throwaway copy: no canary analysis against a baseline, no fixed port
	// shared with the real environment.
	d.Environment, d.Port, d.PreviewPort = env, 0, 0
	if d.Strategy != "" && d.Strategy != "rolling" {
		d.Strategy = "rolling"
		d.Steps, d.Pause, d.KeepWarm, d.Analysis = nil, "", "", nil
	}
	def.Deploy = &d
	job.Def = &def
	return k.Next.Run(ctx, job, rec)
}

// Teardown stops an environment's replicas and frees its port (the deploy Controller's
// Teardown); ErrNoEnvironment-like errors for one that is gone already are the caller's to
// ignore.
type Teardown func(ctx context.Context, env, reason string) error

// ErrPreviewGone is what a Teardown returns for an environment that does not run; previews
// of closed pull requests are looked for again after a restart, and most are gone.
var ErrPreviewGone = errors.New("promote: no such preview environment")

// teardownPreviews stops the previews of closed or merged pull requests, from the recent
// triggers in the inbox.
func (s *Service) teardownPreviews(ctx context.Context) error {
	if s.o.Teardown == nil || s.o.Triggers == nil {
		return nil
	}
	ts, err := s.o.Triggers(ctx, store.TriggerListParams{Limit: 200})
	if err != nil {
		return fmt.Errorf("promote: triggers: %w", err)
	}
	for _, t := range ts {
		if t.Kind != trigger.KindPullRequest || t.PR == nil || t.PR.Number <= 0 ||
			(t.Action != trigger.ActionClosed && t.Action != trigger.ActionMerged) || s.tornDown[t.ID] {
			continue
		}
		env := PreviewPrefix + strconv.Itoa(t.PR.Number)
		reason := fmt.Sprintf("pull request #%d of %s was %s", t.PR.Number, t.Repo, t.Action)
		err := s.o.Teardown(ctx, env, reason)
		switch {
		case err == nil:
			s.o.Logger.Info("promote: preview torn down", "environment", env, "reason", reason)
		case errors.Is(err, ErrPreviewGone):
		default:
			return fmt.Errorf("promote: tear down %s: %w", env, err)
		}
		s.tornDown[t.ID] = true
	}
	return nil
}

// isPreview reports whether an environment is a pull request's preview.
func isPreview(env string) bool {
	n, ok := strings.CutPrefix(env, PreviewPrefix)
	if !ok {
		return false
	}
	_, err := strconv.Atoi(n)
	return err == nil
}
