package audit

import (
	"context"

	"github.com/paved/paved/internal/store"
)

// The entries of what other packages record in the store: a decorator of the store (see
// cmd/paved) turns each deployment and promotion write into entries here, so that the
// deploy controller and the promotion service need not know about the audit log.

// DeploymentStarted is the entry of a deployment that begins: a rollback when it redeploys
// an earlier deployment, else a deployment.
func DeploymentStarted(d store.Deployment) Entry {
	e := Entry{Actor: orSystem(d.TriggeredBy), Action: ActionDeploy, Target: d.Environment, Details: map[string]any{
		"deployment": d.ID, "artifact": d.Artifact, "version": d.Version, "strategy": d.Strategy,
		"config_hash": d.ConfigHash, "run": d.RunID, "stage": d.Stage, "repo": d.Repo, "sha": d.SHA,
	}}
	if d.RollbackOf != "" {
		e.Action = ActionRollback
		e.Details.(map[string]any)["rollback_of"] = d.RollbackOf
	}
	return e
}

// DeploymentFinished is the entry of a deployment's end; an automatic rollback (a canary
// judged bad) is a rollback by the system.
func DeploymentFinished(p store.DeploymentFinishParams, env string) Entry {
	e := Entry{Actor: "system", Action: ActionDeployFinish, Target: env,
		Details: map[string]any{"deployment": p.ID, "outcome": p.Outcome, "reason": p.Reason}}
	if p.Outcome == store.DeploymentRolledBack {
		e.Action = ActionRollback
	}
	return e
}

// PromotionCreated is the entry of a promotion asked for.
func PromotionCreated(p store.Promotion) Entry {
	return Entry{Actor: orSystem(p.RequestedBy), Action: ActionPromote, Target: p.ID, Details: map[string]any{
		"environment": p.Environment, "freight": p.Freight, "state": p.State, "risk": p.Risk,
		"required_approvals": p.RequiredApprovals,
	}}
}

// PromotionDecisions are the entries of the approvals and rejections that next has and
// prev had not.
func PromotionDecisions(prev, next store.Promotion) []Entry {
	var out []Entry
	for i := len(prev.Decisions); i < len(next.Decisions); i++ {
		d := next.Decisions[i]
		action := ActionApprove
		if !d.Approved {
			action = ActionReject
		}
		out = append(out, Entry{Actor: orSystem(d.By), Action: action, Target: next.ID, Details: map[string]any{
			"environment": next.Environment, "freight": next.Freight, "reason": d.Reason, "state": next.State,
		}})
	}
	return out
}

func orSystem(s string) string {
	if s == "" {
		return "system"
	}
	return s
}

// RecordAll records entries in order, stopping at the first failure.
func (l *Log) RecordAll(ctx context.Context, entries ...Entry) error {
	for _, e := range entries {
		if err := l.Record(ctx, e); err != nil {
			return err
		}
	}
	return nil
}
