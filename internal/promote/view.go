package promote

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/paved/paved/internal/deploy/gitops"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// FreightList lists freight, newest first.
func (s *Service) FreightList(ctx context.Context, limit int) ([]store.Freight, error) {
	return s.o.Store.FreightList(ctx, limit)
}

// FreightGet returns a freight by ID or alias.
func (s *Service) FreightGet(ctx context.Context, idOrAlias string) (store.Freight, error) {
	return s.o.Store.FreightGet(ctx, idOrAlias)
}

// PromotionList lists promotions, newest first.
func (s *Service) PromotionList(ctx context.Context, p store.PromotionListParams) ([]store.Promotion, error) {
	return s.o.Store.PromotionList(ctx, p)
}

// PromotionGet returns a promotion.
func (s *Service) PromotionGet(ctx context.Context, id string) (store.Promotion, error) {
	return s.o.Store.PromotionGet(ctx, id)
}

// Approval is what an approver sees of a promotion waiting for them: the changeset and its
// risk, the gate results, what runs in the environment now (the rollback plan) and the
// environment's recent deployments.
type Approval struct {
	Promotion store.Promotion `json:"promotion"`
	Freight   store.Freight   `json:"freight"`
	Approvers []string        `json:"approvers"`
	Gates     []run.Gate      `json:"gates"`
	// Current is the deployment a rollback would return to; nil before the first.
	Current  *store.Deployment  `json:"current,omitempty"`
	Rollback string             `json:"rollback"`
	Recent   []store.Deployment `json:"recent_deployments"`
	// Diff sums the changeset: files, lines added and deleted, per file.
	Diff Diff `json:"diff"`
	// Affected is what the promotion changes: the environment, what runs there now and
	// what will.
	Affected Affected `json:"affected"`
	// Coverage is the freight's run's test coverage; nil when it reported none.
	Coverage *run.Coverage `json:"coverage,omitempty"`
}

// Diff is a changeset's summary.
type Diff struct {
	Files   int        `json:"files"`
	Added   int        `json:"added"`
	Deleted int        `json:"deleted"`
	Changes []FileDiff `json:"changes"`
	Note    string     `json:"note,omitempty"` // why counts are missing
}

// Affected is what a promotion changes.
type Affected struct {
	Environment string `json:"environment"`
	Repo        string `json:"repo"`
	FromSHA     string `json:"from_sha,omitempty"`
	ToSHA       string `json:"to_sha"`
	// FromArtifact runs there now (empty before the first deployment); ToArtifact will.
	FromArtifact string `json:"from_artifact,omitempty"`
	ToArtifact   string `json:"to_artifact"`
	// Replicas is how many replicas the current deployment runs (0: unknown or none).
	Replicas int `json:"replicas,omitempty"`
}

// Approvals lists the promotions waiting for approval (pending, or blocked but needing
// approvals), with their context; user non-empty keeps those user may approve.
func (s *Service) Approvals(ctx context.Context, user string) ([]Approval, error) {
	out := []Approval{}
	for _, state := range []string{store.PromotionPending, store.PromotionBlocked} {
		ps, err := s.o.Store.PromotionList(ctx, store.PromotionListParams{State: state})
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			if approvals(p) >= p.RequiredApprovals {
				continue
			}
			e, _, ok := s.o.Config.Env(p.Environment)
			if !ok {
				continue
			}
			if user != "" && (user == p.Author || (len(e.Approvers) > 0 && !contains(e.Approvers, user))) {
				continue
			}
			a, err := s.approval(ctx, p, e)
			if err != nil {
				return nil, err
			}
			out = append(out, a)
		}
	}
	return out, nil
}

// ApprovalGet is one promotion's approval view.
func (s *Service) ApprovalGet(ctx context.Context, id string) (Approval, error) {
	p, err := s.o.Store.PromotionGet(ctx, id)
	if err != nil {
		return Approval{}, err
	}
	e, _, ok := s.o.Config.Env(p.Environment)
	if !ok {
		return Approval{}, fmt.Errorf("%w %q", ErrUnknownEnvironment, p.Environment)
	}
	return s.approval(ctx, p, e)
}

func (s *Service) approval(ctx context.Context, p store.Promotion, e Environment) (Approval, error) {
	f, err := s.o.Store.FreightGet(ctx, p.Freight)
	if err != nil {
		return Approval{}, err
	}
	recent, err := s.o.Store.DeploymentList(ctx, store.DeploymentListParams{Environment: e.Name, Limit: 5})
	if err != nil {
		return Approval{}, err
	}
	a := Approval{Promotion: p, Freight: f, Approvers: e.Approvers, Gates: f.Gates, Recent: recent,
		Rollback: "nothing runs in " + e.Name + " yet: a failed deployment leaves it empty"}
	for _, d := range recent {
		if d.Outcome == store.DeploymentSucceeded {
			a.Current = &d
			a.Rollback = fmt.Sprintf("paved rollback %s --to %s (%s, sha %s)", e.Name, d.ID, d.Version, short(d.SHA))
			break
		}
	}
	if a.Gates == nil {
		a.Gates = []run.Gate{}
	}
	a.Coverage = f.Coverage
	a.Affected = Affected{Environment: e.Name, Repo: f.Repo, FromSHA: p.BaseSHA, ToSHA: f.SHA}
	a.Affected.ToArtifact, _ = artifactFor(e, f)
	if a.Current != nil {
		a.Affected.FromArtifact = a.Current.Artifact
		var spec struct {
			Replicas int `json:"replicas"`
		}
		if json.Unmarshal(a.Current.Config, &spec) == nil {
			a.Affected.Replicas = spec.Replicas
		}
	}
	a.Diff = s.diff(ctx, p, f)
	return a, nil
}

// diff counts the changeset's lines when it can; the file list alone otherwise.
func (s *Service) diff(ctx context.Context, p store.Promotion, f store.Freight) Diff {
	d := Diff{Files: len(p.Files), Changes: []FileDiff{}}
	switch {
	case p.BaseSHA == "":
		d.Note = "no earlier deployment to compare with"
		return d
	case s.o.DiffStat == nil:
		d.Note = "line counts are not available on this server"
	default:
		changes, err := s.o.DiffStat(ctx, f.Repo, p.BaseSHA, f.SHA)
		if err == nil {
			d.Changes, d.Files = changes, len(changes)
			for _, c := range changes {
				d.Added += max(c.Added, 0)
				d.Deleted += max(c.Deleted, 0)
			}
			return d
		}
		d.Note = "line counts: " + err.Error()
	}
	for _, file := range p.Files {
		d.Changes = append(d.Changes, FileDiff{Path: file, Added: -1, Deleted: -1})
	}
	return d
}

// EnvironmentView is one environment of the promotion path as the API shows it: its
// config, where promotions go (deploy or gitops), what runs there and, for gitops, the last
// drift check.
type EnvironmentView struct {
	Environment
	Order   int               `json:"order"` // 0 for the first
	Target  string            `json:"target"`
	Current *store.Deployment `json:"current,omitempty"`
	Drift   *gitops.Drift     `json:"drift,omitempty"`
}

// Environments lists the promotion path in order.
func (s *Service) Environments(ctx context.Context) ([]EnvironmentView, error) {
	out := make([]EnvironmentView, 0, len(s.o.Config.Environments))
	for i, e := range s.o.Config.Environments {
		v := EnvironmentView{Environment: e, Order: i, Target: "deploy"}
		if e.GitOps != nil {
			v.Target = "gitops"
			if d, ok := s.Drift(e.Name); ok {
				v.Drift = &d
			}
		}
		last, err := s.o.Store.DeploymentList(ctx, store.DeploymentListParams{Environment: e.Name, Outcome: store.DeploymentSucceeded, Limit: 1})
		if err != nil {
			return nil, fmt.Errorf("promote: deployments of %s: %w", e.Name, err)
		}
		if len(last) > 0 {
			v.Current = &last[0]
		}
		out = append(out, v)
	}
	return out, nil
}
