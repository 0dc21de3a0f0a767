package promote

import (
	"fmt"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// Risk levels of a changeset.
const (
	RiskLow    = "low"
	RiskMedium = "medium"
	RiskHigh   = "high"
)

// Score rates the files of a changeset and says why: the first file that made it high,
// else the first that made it medium. known is false when the changeset is unknown (no
// earlier deployment to compare with): that is medium, since nothing says it is harmless.
func (r Risk) Score(files []string, known bool) (level, reason string) {
	if !known {
		return RiskMedium, "no earlier deployment to compare with: the whole service is new here"
	}
	if len(files) == 0 {
		return RiskLow, "no files changed"
	}
	var medium string
	for _, f := range files {
		if g, ok := match(r.High, f); ok {
			return RiskHigh, fmt.Sprintf("%s matches %s (high risk)", f, g)
		}
		if _, ok := match(r.Low, f); !ok && medium == "" {
			medium = f
		}
	}
	if medium != "" {
		return RiskMedium, fmt.Sprintf("%s is not docs-only", medium)
	}
	return RiskLow, fmt.Sprintf("%d files, all low risk (%s)", len(files), strings.Join(files[:min(3, len(files))], ", "))
}

// Approvals is how many approvers a risk needs.
func Approvals(level string) int {
	switch level {
	case RiskLow:
		return 0
	case RiskHigh:
		return 2
	}
	return 1
}

func match(globs []string, file string) (string, bool) {
	for _, g := range globs {
		if ok, _ := doublestar.Match(g, file); ok {
			return g, true
		}
	}
	return "", false
}
