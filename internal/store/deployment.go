package store

import (
	"encoding/json"
	"time"
)

// Deployment outcomes.
const (
	DeploymentInProgress  = "in_progress"
	DeploymentSucceeded   = "succeeded"
	DeploymentFailed      = "failed"      // did not reach its target; the environment was left as it was
	DeploymentRolledBack  = "rolled_back" // reached some traffic, was judged bad and rolled back
	DeploymentInterrupted = "interrupted" // the server stopped while it ran
)

// Deployment is one deployment of an artifact to an environment, as the history keeps it:
// enough to redeploy it (Artifact, Config) and to audit it (who, when, what came of it).
type Deployment struct {
	ID          string `json:"id"`
	Environment string `json:"environment"`
	Strategy    string `json:"strategy"`
	// Artifact is the service binary's digest in the artifact store; Version its short label.
	Artifact string `json:"artifact"`
	Version  string `json:"version"`
	// Config is the deployment's settings as JSON (deploy.Spec); ConfigHash its sha256.
	Config     json.RawMessage `json:"config"`
	ConfigHash string          `json:"config_hash"`
	// Where it came from: a run's stage, or a rollback (RollbackOf names the deployment
	// redeployed) by TriggeredBy.
	RunID       string    `json:"run_id,omitempty"`
	Stage       string    `json:"stage,omitempty"`
	Repo        string    `json:"repo,omitempty"`
	SHA         string    `json:"sha,omitempty"`
	TriggeredBy string    `json:"triggered_by"`
	RollbackOf  string    `json:"rollback_of,omitempty"`
	Outcome     string    `json:"outcome"`
	Reason      string    `json:"reason,omitempty"`
	StartedAt   time.Time `json:"started_at"`
	FinishedAt  time.Time `json:"finished_at,omitzero"`
}

// DeploymentFinishParams records how a deployment ended. Only an in-progress deployment can
// finish; finishing another is an error wrapping ErrConflict, an unknown ID ErrNotFound.
type DeploymentFinishParams struct {
	ID         string
	Outcome    string
	Reason     string
	FinishedAt time.Time
}

// DeploymentListParams lists deployments newest first (by StartedAt, then ID). Zero fields
// do not filter; Limit 0 means 100.
type DeploymentListParams struct {
	Environment string
	Outcome     string
	Limit       int
}
