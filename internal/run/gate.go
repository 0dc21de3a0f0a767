package run

// Gate is what a gate stage (uses: gate/...) decided: GateEvaluated carries it. The gate
// package fills it; the run keeps it so that a replay shows every finding and decision.
type Gate struct {
	// Kind is the gate's stage kind, e.g. gate/secrets.
	Kind string `json:"kind"`
	// Decision is pass, warn or block.
	Decision string `json:"decision"`
}

// applyGate folds a GateEvaluated event into its stage.
func (st *StageState) applyGate(e Event) {
	if e.Gate != nil {
		st.Gates = append(st.Gates, *e.Gate)
	}
}
