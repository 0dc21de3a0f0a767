package store

import (
	"time"

	"github.com/paved/paved/internal/run"
)

// Freight is the immutable set of things a succeeded run produced: what promotion moves from
// environment to environment, never rebuilt. ID is the sha256 of its content (see
// internal/promote.FreightID); Alias is a short, human name for it.
type Freight struct {
	ID    string `json:"id"`
	Alias string `json:"alias"`
	// Artifacts maps a deploy stage's name to the digest of the artifact it deploys.
	Artifacts  map[string]string `json:"artifacts"`
	Repo       string            `json:"repo"`
	SHA        string            `json:"sha"`
	ConfigHash string            `json:"config_hash"`
	RunID      string            `json:"run_id"`
	Author     string            `json:"author,omitempty"`
	// Gates are the run's gate decisions, checked again at each environment's promotion.
	Gates []run.Gate `json:"gates,omitempty"`
	// Coverage is the run's test coverage (its CoverageReported events summed); nil when
	// no stage reported any.
	Coverage  *run.Coverage `json:"coverage,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
}

// Promotion states.
const (
	PromotionBlocked   = "blocked"   // a policy rule blocks it (Reason says which); re-checked later
	PromotionPending   = "pending"   // waits for approvals
	PromotionApproved  = "approved"  // approved, about to deploy
	PromotionDeploying = "deploying" // its deployment runs
	PromotionSucceeded = "succeeded" // deployed and verified
	PromotionFailed    = "failed"    // its deployment failed
	PromotionRejected  = "rejected"  // an approver rejected it
)

// PromotionFinal reports whether a promotion in state s will not change any more.
func PromotionFinal(s string) bool {
	return s == PromotionSucceeded || s == PromotionFailed || s == PromotionRejected
}

// Decision is one approver's verdict on a promotion, kept with its reason for the audit.
type Decision struct {
	By       string    `json:"by"`
	Approved bool      `json:"approved"`
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at"`
}

// Promotion is a request to move a freight into an environment, and what came of it.
type Promotion struct {
	ID          string `json:"id"`
	Freight     string `json:"freight"`
	Environment string `json:"environment"`
	State       string `json:"state"`
	// Reason says why it is in State: the rule that blocks it, the rejection, the failure.
	Reason string `json:"reason,omitempty"`
	// Risk of the changeset (low, medium, high), why, and the approvals it needs.
	Risk       string   `json:"risk"`
	RiskReason string   `json:"risk_reason,omitempty"`
	Files      []string `json:"files,omitempty"`
	// BaseSHA is the sha the changeset starts from: what ran in the environment before.
	BaseSHA           string     `json:"base_sha,omitempty"`
	RequiredApprovals int        `json:"required_approvals"`
	Decisions         []Decision `json:"decisions,omitempty"`
	// Author of the change (who may not approve it) and who asked for the promotion.
	Author      string `json:"author,omitempty"`
	RequestedBy string `json:"requested_by"`
	Deployment  string `json:"deployment,omitempty"` // IDs of the deployments it ran, comma-separated
	// GitOpsCommit is the config repository's commit that holds the digest, for an
	// environment with a gitops target.
	GitOpsCommit string `json:"gitops_commit,omitempty"`
	// PendingSince is when it started to wait for approvals: an approval timeout counts
	// from it. Zero while it never waited.
	PendingSince time.Time `json:"pending_since,omitzero"`
	// Hotfix marks an emergency promotion: HotfixReason is why, Skipped lists the rules it
	// did not have to pass, FollowUp the run that checks the skipped gates afterwards.
	Hotfix       bool      `json:"hotfix,omitempty"`
	HotfixReason string    `json:"hotfix_reason,omitempty"`
	Skipped      []string  `json:"skipped,omitempty"`
	FollowUp     *FollowUp `json:"follow_up,omitempty"`
	// Version counts updates: PromotionUpdate succeeds only when it is still the one read.
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// FollowUp is the run a hotfix promotion scheduled to check what it skipped, and what came
// of it.
type FollowUp struct {
	RunID  string   `json:"run_id,omitempty"`
	Stages []string `json:"stages,omitempty"` // the stages it runs
	// Phase is the run's phase once it finished (SUCCEEDED, FAILED...); empty before.
	Phase string `json:"phase,omitempty"`
	// Gates are its gate decisions with their findings' counts; Summary says them in a line.
	Gates   []run.Gate `json:"gates,omitempty"`
	Summary string     `json:"summary,omitempty"`
	// Note says why there is no run (nothing to check, or creating it failed).
	Note string `json:"note,omitempty"`
}

// PromotionListParams lists promotions newest first (by CreatedAt, then ID). Zero fields do
// not filter; Limit 0 means 100.
type PromotionListParams struct {
	Environment string
	State       string
	Freight     string
	Limit       int
}
