package run

// Tests is what a stage attempt's JUnit reports (reports: junit:) said, recorded by
// TestsReported with the stage's result. Cases are compacted to what test history and flaky
// detection need; messages and output stay in the stage's log and the report files.
type Tests struct {
	// Files are the report files read, relative to the workspace.
	Files   []string `json:"files"`
	Total   int      `json:"total"`
	Passed  int      `json:"passed"`
	Failed  int      `json:"failed"`
	Errored int      `json:"errored"`
	Skipped int      `json:"skipped"`
	// DurationMS is the sum of the cases' times.
	DurationMS int64      `json:"duration_ms"`
	Cases      []TestCase `json:"cases,omitempty"`
	// Quarantined names the failed tests that were quarantined as flaky when the stage
	// failed only because of them: the stage succeeded anyway (see docs/insights.md).
	Quarantined []string `json:"quarantined,omitempty"`
	// Note says what could not be read (a file too large, a report that did not parse).
	Note string `json:"note,omitempty"`
}

// TestCase is one test's outcome in a stage attempt.
type TestCase struct {
	ID         string `json:"id"`     // class (or suite) and name, e.g. pkg.TestFoo
	Status     string `json:"status"` // passed, failed, errored, skipped
	DurationMS int64  `json:"ms,omitempty"`
}

// FailedIDs lists the tests that failed or errored, in report order, each once.
func (t *Tests) FailedIDs() []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range t.Cases {
		if (c.Status == "failed" || c.Status == "errored") && !seen[c.ID] {
			seen[c.ID] = true
			out = append(out, c.ID)
		}
	}
	return out
}
