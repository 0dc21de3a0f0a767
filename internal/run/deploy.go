package run

// Deployment outcomes (Deployment.Outcome on DeploymentFinished).
const (
	DeploySucceeded  = "succeeded"
	DeployFailed     = "failed"      // did not reach its target; the environment is as it was
	DeployRolledBack = "rolled_back" // reached traffic, was judged bad, and was rolled back
)

// Analysis outcomes (Analysis.Outcome), in Argo Rollouts' words.
const (
	AnalysisPass         = "pass"
	AnalysisFail         = "fail"
	AnalysisInconclusive = "inconclusive" // too little traffic to judge: the deployment pauses
	AnalysisError        = "error"        // the metric source failed
)

// Deployment is one step of a deploy stage's progress (DeploymentStarted,
// DeploymentStepAdvanced, AnalysisRun, RollbackStarted, DeploymentFinished carry it). The
// deploy package fills it; the run keeps the latest so that a replay shows where a
// deployment stood.
type Deployment struct {
	ID          string `json:"id"`
	Environment string `json:"environment"`
	Strategy    string `json:"strategy"`
	// Artifact is the deployed binary's digest; Version its short label in metrics.
	Artifact string `json:"artifact,omitempty"`
	Version  string `json:"version,omitempty"`
	// URL is the environment's address.
	URL string `json:"url,omitempty"`
	// Step is the canary step or rolling batch (1-based) of Steps.
	Step  int `json:"step,omitempty"`
	Steps int `json:"steps,omitempty"`
	// Weights are the traffic shares in percent by track (stable, canary, baseline).
	Weights map[string]int `json:"weights,omitempty"`
	// Phase: progressing, paused (analysis inconclusive), verifying, rolling_back, done.
	Phase string `json:"phase,omitempty"`
	// Analysis is the measurement an AnalysisRun reports, and the deciding one on
	// RollbackStarted.
	Analysis *Analysis `json:"analysis,omitempty"`
	// Outcome (succeeded, failed, rolled_back) and Reason are set on DeploymentFinished,
	// Reason also on RollbackStarted.
	Outcome string `json:"outcome,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// RollbackMS is the time from the failing decision to the new version's 0% traffic.
	RollbackMS float64 `json:"rollback_ms,omitempty"`
}

// Analysis is one measurement of a canary against its baseline (or of a deployment in its
// SLO window, without baseline).
type Analysis struct {
	Step        int           `json:"step,omitempty"`
	Measurement int           `json:"measurement"` // 1-based within the step
	Outcome     string        `json:"outcome"`     // pass, fail, inconclusive, error
	Reason      string        `json:"reason,omitempty"`
	Metrics     []MetricValue `json:"metrics,omitempty"`
}

// MetricValue is one metric of a measurement: its value, the threshold it was held to and
// the baseline's value it was compared with.
type MetricValue struct {
	Name      string  `json:"name"` // error_rate, p99_latency_ms, restarts, memory_bytes, requests
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	Baseline  float64 `json:"baseline"`
	Outcome   string  `json:"outcome"` // pass, fail, inconclusive
}

// applyDeploy folds a deployment event into its stage.
func (st *StageState) applyDeploy(e Event) {
	if e.Deployment != nil {
		d := *e.Deployment
		st.Deployment = &d
	}
}
