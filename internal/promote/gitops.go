package promote

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/paved/paved/internal/deploy/gitops"
	"github.com/paved/paved/internal/store"
)

// gitopsTargets are the environments' gitops targets and the last drift check of each.
type gitopsTargets struct {
	mu      sync.Mutex
	targets map[string]*gitops.Target
	drift   map[string]gitops.Drift
	checked map[string]time.Time
}

func newGitopsTargets(c Config, dir string) (*gitopsTargets, error) {
	g := &gitopsTargets{targets: map[string]*gitops.Target{}, drift: map[string]gitops.Drift{}, checked: map[string]time.Time{}}
	for _, e := range c.Environments {
		if e.GitOps == nil {
			continue
		}
		t, err := gitops.New(e.GitOps.Config, dir)
		if err != nil {
			return nil, fmt.Errorf("promote: gitops of %s: %w", e.Name, err)
		}
		g.targets[e.Name] = t
	}
	return g, nil
}

func (g *gitopsTargets) target(env string) *gitops.Target {
	if g == nil {
		return nil
	}
	return g.targets[env]
}

// Drift returns the last drift check of a gitops environment; ok is false for another
// environment or before the first check.
func (s *Service) Drift(env string) (gitops.Drift, bool) {
	if s.gitops == nil {
		return gitops.Drift{}, false
	}
	s.gitops.mu.Lock()
	defer s.gitops.mu.Unlock()
	d, ok := s.gitops.drift[env]
	return d, ok
}

// deployGitOps is startDeploy for a gitops environment: one commit of the digest, then the
// wait for the health signal, recorded as a deployment like any other so that the next
// environment sees the freight verified here.
func (s *Service) deployGitOps(ctx context.Context, t *gitops.Target, p store.Promotion, e Environment, f store.Freight, digest string) {
	cfg, _ := json.Marshal(t.Config())
	d := store.Deployment{ID: "dep-" + uuid.NewString()[:13], Environment: e.Name, Strategy: "gitops", Artifact: digest, Version: short(digest),
		Config: cfg, ConfigHash: "", RunID: f.RunID, Repo: f.Repo, SHA: f.SHA, TriggeredBy: "promotion " + p.ID + " of " + f.Alias,
		Outcome: store.DeploymentInProgress, StartedAt: s.o.Now()}
	if err := s.o.Store.DeploymentAppend(ctx, d); err != nil {
		s.finish(ctx, p.ID, store.PromotionFailed, "gitops: record the deployment: "+err.Error(), "")
		return
	}
	end := func(outcome, reason string) {
		if err := s.o.Store.DeploymentFinish(context.WithoutCancel(ctx), store.DeploymentFinishParams{ID: d.ID, Outcome: outcome, Reason: reason, FinishedAt: s.o.Now()}); err != nil {
			s.o.Logger.Error("promote: gitops deployment", "deployment", d.ID, "err", err)
		}
	}
	s.finish(ctx, p.ID, store.PromotionDeploying, "committing "+short(digest)+" to "+t.Config().Repo+" for "+e.Name, d.ID)
	res, err := t.Commit(ctx, gitops.Request{Environment: e.Name, Digest: digest, Freight: f.Alias, Promotion: p.ID, By: p.RequestedBy})
	if err != nil {
		end(store.DeploymentFailed, err.Error())
		s.finish(ctx, p.ID, store.PromotionFailed, err.Error(), d.ID)
		return
	}
	s.setCommit(ctx, p.ID, res.Commit)
	st, err := t.WaitHealthy(ctx, digest)
	if err != nil {
		if s.ctx.Err() != nil {
			return // the server stops: the promotion stays deploying, Start resumes it (no second commit)
		}
		end(store.DeploymentFailed, err.Error())
		s.finish(ctx, p.ID, store.PromotionFailed, fmt.Sprintf("gitops: committed %s, but %v", short(res.Commit), err), d.ID)
		return
	}
	end(store.DeploymentSucceeded, "")
	s.finish(ctx, p.ID, store.PromotionSucceeded, fmt.Sprintf("committed %s to %s; %s reports %s healthy", short(res.Commit), t.Config().Repo, e.Name, short(st.Digest)), d.ID)
}

func (s *Service) setCommit(ctx context.Context, id, commit string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.o.Store.PromotionGet(ctx, id)
	if err == nil {
		p.GitOpsCommit = commit
		_, err = s.o.Store.PromotionUpdate(ctx, p)
	}
	if err != nil {
		s.o.Logger.Warn("promote: record the gitops commit", "promotion", id, "err", err)
	}
}

// checkDrift compares each gitops environment's config repository with what it reports
// running, at most every DriftEvery. A drift that appears is logged and recorded in the run
// of the freight last promoted there; the last check is served by Drift.
func (s *Service) checkDrift(ctx context.Context) error {
	if s.gitops == nil {
		return nil
	}
	for env, t := range s.gitops.targets {
		s.gitops.mu.Lock()
		due := s.o.Now().Sub(s.gitops.checked[env]) >= s.o.DriftEvery
		prev, had := s.gitops.drift[env]
		s.gitops.mu.Unlock()
		if !due {
			continue
		}
		d, err := t.CheckDrift(ctx, s.o.Now())
		if err != nil {
			d = gitops.Drift{Drifted: true, Reason: "cannot read the config repository: " + err.Error(), CheckedAt: s.o.Now()}
		}
		s.gitops.mu.Lock()
		s.gitops.drift[env], s.gitops.checked[env] = d, s.o.Now()
		s.gitops.mu.Unlock()
		if d.Drifted && (!had || !prev.Drifted || prev.Reason != d.Reason) {
			s.o.Logger.Warn("promote: gitops drift", "environment", env, "reason", d.Reason)
			ps, err := s.o.Store.PromotionList(ctx, store.PromotionListParams{Environment: env, State: store.PromotionSucceeded, Limit: 1})
			if err == nil && len(ps) > 0 {
				if f, err := s.o.Store.FreightGet(ctx, ps[0].Freight); err == nil {
					s.record(ctx, f.RunID, "drift", fmt.Sprintf("%s drifted from its config repository: %s", env, d.Reason))
				}
			}
		}
	}
	return nil
}
