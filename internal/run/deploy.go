package run

// Deployment is one step of a deploy stage's progress (DeploymentStarted,
// DeploymentStepAdvanced, AnalysisRun, RollbackStarted, DeploymentFinished carry it). The
// deploy package fills it; the run keeps the latest so that a replay shows where a
// deployment stood.
type Deployment struct {
	ID          string `json:"id"`
	Environment string `json:"environment"`
	Strategy    string `json:"strategy"`
}

// applyDeploy folds a deployment event into its stage.
func (st *StageState) applyDeploy(e Event) {
	if e.Deployment != nil {
		d := *e.Deployment
		st.Deployment = &d
	}
}
