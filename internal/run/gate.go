package run

// Gate is what a gate stage (uses: gate/...) decided: GateEvaluated carries it. The gate
// package fills it; the run keeps it so that a replay shows every finding and decision.
// Nothing in it may hold a secret's bytes: a Finding's Match is redacted before it gets here.
type Gate struct {
	// Kind is the gate's stage kind, e.g. gate/secrets.
	Kind string `json:"kind"`
	// Decision is pass, warn or block.
	Decision string `json:"decision"`
	// Reason is the decision in one line, e.g. "3 findings at or above HIGH block production".
	Reason string `json:"reason,omitempty"`
	// Environment is the environment whose policy decided, and EnvironmentFrom why it was
	// that one: "with" (with: environment), "deploy" (a deploy stage downstream) or
	// "default" (none named: the strictest).
	Environment     string `json:"environment,omitempty"`
	EnvironmentFrom string `json:"environment_from,omitempty"`
	// Policy names the policy and its version, e.g. "paved-default@1"; BlockAt and WarnAt are
	// the severities it applied (empty: never).
	Policy  string `json:"policy,omitempty"`
	BlockAt string `json:"block_at,omitempty"`
	WarnAt  string `json:"warn_at,omitempty"`
	// Counts are the findings per severity (CRITICAL, HIGH, MEDIUM, LOW, INFO).
	Counts map[string]int `json:"counts,omitempty"`
	// Findings are what the gate found, most severe first; Suppressed counts those a
	// baseline or suppression file waived.
	Findings   []Finding `json:"findings,omitempty"`
	Suppressed int       `json:"suppressed,omitempty"`
	// Truncated counts findings left out of Findings to keep an event small.
	Truncated int `json:"truncated,omitempty"`
}

// Finding is one problem a gate found.
type Finding struct {
	// Rule is the rule or advisory that matched: a gitleaks rule id, an OSV id, a SARIF
	// ruleId, a policy rule.
	Rule string `json:"rule"`
	// Severity is CRITICAL, HIGH, MEDIUM, LOW or INFO.
	Severity string `json:"severity"`
	Message  string `json:"message,omitempty"`
	// File and Line locate it in the checkout (Line 0: the whole file).
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	// Match is what matched with any secret in it redacted (gate/secrets).
	Match string `json:"match,omitempty"`
	// Object names a Kubernetes object, kind/namespace/name (gate/policy).
	Object string `json:"object,omitempty"`
	// Package, Version and Fixed describe a vulnerable dependency (gate/vulns).
	Package string `json:"package,omitempty"`
	Version string `json:"version,omitempty"`
	Fixed   string `json:"fixed,omitempty"`
	// Tool is the scanner that reported it (gate/sarif).
	Tool string `json:"tool,omitempty"`
	// Fingerprint identifies the finding across runs, for baselines.
	Fingerprint string `json:"fingerprint,omitempty"`
}

// applyGate folds a GateEvaluated event into its stage.
func (st *StageState) applyGate(e Event) {
	if e.Gate != nil {
		st.Gates = append(st.Gates, *e.Gate)
	}
}
