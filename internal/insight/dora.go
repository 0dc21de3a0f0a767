package insight

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// DeploymentStore is what DORA keys read of a store: the deployment history.
type DeploymentStore interface {
	DeploymentList(ctx context.Context, p store.DeploymentListParams) ([]store.Deployment, error)
}

// MaxDeployments bounds how many deployments one DORA report reads: the newest.
const MaxDeployments = 10000

// DORA is the four keys of one environment over a window (docs/insights.md says how each
// is counted). A redeploy made by a rollback (RollbackOf set) ships no change: it is not
// counted as a deployment, but it may restore the environment and it is a rollback.
type DORA struct {
	Environment string    `json:"environment"`
	Since       time.Time `json:"since"`
	Until       time.Time `json:"until"`
	// Deployments are the finished deployments of changes started in the window, by outcome.
	Deployments int `json:"deployments"`
	Succeeded   int `json:"succeeded"`
	Failed      int `json:"failed"`
	RolledBack  int `json:"rolled_back"`
	// PerDay is deployment frequency: succeeded deployments per day of the window.
	PerDay float64 `json:"deployments_per_day"`
	// LeadTimeMS is from the run's commit to its deployment's success, of the succeeded
	// deployments whose commit time is known.
	LeadTimeMS Percentiles `json:"lead_time_ms"`
	// ChangeFailureRate is (failed + rolled back) / deployments; 0 without deployments.
	ChangeFailureRate float64 `json:"change_failure_rate"`
	// RestoreMS is time to restore: from the first failed or rolled back deployment of an
	// incident to the next succeeded deployment of the environment (a rollback's redeploy
	// included). FailingSince is set when the window ends inside an incident.
	RestoreMS    Percentiles `json:"time_to_restore_ms"`
	FailingSince *time.Time  `json:"failing_since,omitempty"`
	// Rollbacks counts rolled back deployments and manual rollbacks, by reason (the
	// reason's words before any detail: "analysis failed", "verification failed", "manual").
	Rollbacks         int            `json:"rollbacks"`
	RollbacksByReason map[string]int `json:"rollbacks_by_reason"`
	Truncated         bool           `json:"truncated"`
}

// ComputeDORA computes the keys of deps (one environment's deployments, any order) in
// [since, until), with commits giving each run's commit time by run ID.
func ComputeDORA(env string, deps []store.Deployment, commits map[string]time.Time, since, until time.Time) DORA {
	d := DORA{Environment: env, Since: since, Until: until, RollbacksByReason: map[string]int{}}
	var in []store.Deployment
	for _, dep := range deps {
		if (env == "" || dep.Environment == env) && !dep.StartedAt.Before(since) && dep.StartedAt.Before(until) &&
			!dep.FinishedAt.IsZero() {
			in = append(in, dep)
		}
	}
	slices.SortStableFunc(in, func(a, b store.Deployment) int { return a.FinishedAt.Compare(b.FinishedAt) })
	var leads, restores []int64
	var failingSince time.Time
	for _, dep := range in {
		change := dep.RollbackOf == ""
		switch dep.Outcome {
		case store.DeploymentSucceeded:
			if change {
				d.Succeeded++
				if c, ok := commits[dep.RunID]; ok && !c.IsZero() && !dep.FinishedAt.Before(c) {
					leads = append(leads, dep.FinishedAt.Sub(c).Milliseconds())
				}
			}
			if !failingSince.IsZero() {
				restores = append(restores, dep.FinishedAt.Sub(failingSince).Milliseconds())
				failingSince = time.Time{}
			}
		case store.DeploymentFailed, store.DeploymentRolledBack:
			if change && dep.Outcome == store.DeploymentFailed {
				d.Failed++
			} else if change {
				d.RolledBack++
			}
			if failingSince.IsZero() {
				failingSince = dep.FinishedAt
			}
		default:
			continue // interrupted: neither a success nor a failure of the change
		}
		if dep.Outcome == store.DeploymentRolledBack {
			d.Rollbacks++
			d.RollbacksByReason[reasonClass(dep.Reason)]++
		}
		if !change {
			d.Rollbacks++
			d.RollbacksByReason["manual"]++
		}
	}
	d.Deployments = d.Succeeded + d.Failed + d.RolledBack
	if days := until.Sub(since).Hours() / 24; days > 0 {
		d.PerDay = float64(d.Succeeded) / days
	}
	if d.Deployments > 0 {
		d.ChangeFailureRate = float64(d.Failed+d.RolledBack) / float64(d.Deployments)
	}
	d.LeadTimeMS, d.RestoreMS = percentiles(leads), percentiles(restores)
	if !failingSince.IsZero() {
		d.FailingSince = &failingSince
	}
	return d
}

// reasonClass is a rollback reason's words before its details ("analysis failed at step 2
// (50%): error rate" is "analysis failed"), so that reasons can be counted.
func reasonClass(r string) string {
	r, _, _ = strings.Cut(r, ":")
	if i := strings.Index(r, " at step"); i >= 0 {
		r = r[:i]
	}
	if r = strings.TrimSpace(r); r == "" {
		return "unknown"
	}
	return r
}

// LoadDORA reads an environment's deployments and the commit times of their runs (recorded
// as the runs were created, run.Info.CommittedAt) and computes the keys.
func LoadDORA(ctx context.Context, deps DeploymentStore, runs RunStore, env string, since, until time.Time) (DORA, error) {
	list, err := deps.DeploymentList(ctx, store.DeploymentListParams{Environment: env, Limit: MaxDeployments + 1})
	if err != nil {
		return DORA{}, err
	}
	truncated := len(list) > MaxDeployments
	if truncated {
		list = list[:MaxDeployments]
	}
	commits := map[string]time.Time{}
	for _, dep := range list {
		if dep.RunID == "" || dep.StartedAt.Before(since) || !dep.StartedAt.Before(until) {
			continue
		}
		if _, ok := commits[dep.RunID]; ok {
			continue
		}
		evs, err := runs.EventList(ctx, store.EventListParams{RunID: dep.RunID, Limit: 1})
		if err != nil {
			return DORA{}, err
		}
		commits[dep.RunID] = time.Time{}
		if len(evs) == 1 && evs[0].Type == run.RunCreated && evs[0].Info != nil {
			commits[dep.RunID] = evs[0].Info.CommittedAt
		}
	}
	d := ComputeDORA(env, list, commits, since, until)
	d.Truncated = truncated
	return d, nil
}
