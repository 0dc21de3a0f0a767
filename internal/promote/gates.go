package promote

import (
	"fmt"
	"strings"

	"github.com/paved/paved/internal/gate"
	"github.com/paved/paved/internal/run"
)

// gatesBlock judges the freight's gate results again at environment e's strictness: a gate
// that passed for dev (which only warns on HIGH) may block prod. The findings' counts per
// severity are complete even when the event's finding list was truncated, so they decide.
// A gate that blocked where it ran blocks everywhere.
//
// A hotfix enforces only the critical gates (Critical); what the others would have said is
// returned in skipped, one line per gate.
func gatesBlock(e Environment, gates []run.Gate, hotfix bool) (block string, skipped []string) {
	policy := gate.DefaultPolicy()
	name := e.Gates
	if name == "" {
		name = e.Name
	}
	rule, named := policy.Rule(name)
	judged := name
	if !named {
		judged = policy.Strictest() + " (the strictest: the gate policy does not name " + name + ")"
	}
	for _, g := range gates {
		reason := gateBlocks(e, g, rule, judged, policy.Ref())
		switch {
		case hotfix && !Critical(g):
			verdict := "passes"
			if reason != "" {
				verdict = "would block: " + reason
			}
			skipped = append(skipped, fmt.Sprintf("gate %s (%s)", g.Kind, verdict))
		case reason != "":
			return reason, skipped
		}
	}
	return "", skipped
}

// Critical reports whether a gate's result holds even for a hotfix: secret detection
// always, vulnerability matching when it found anything CRITICAL.
func Critical(g run.Gate) bool {
	return g.Kind == "gate/secrets" || (g.Kind == "gate/vulns" && g.Counts[gate.Critical.String()] > 0)
}

// gateBlocks says why g keeps freight out of e under rule ("" if it does not).
func gateBlocks(e Environment, g run.Gate, rule gate.Rule, judged, ref string) string {
	if g.Decision == gate.Block {
		return fmt.Sprintf("gate %s blocked in its run: %s", g.Kind, g.Reason)
	}
	if rule.Block == gate.None {
		return ""
	}
	var over []string
	n := 0
	for sev, c := range g.Counts {
		if c > 0 && gate.SeverityOf(sev) >= rule.Block {
			n += c
			over = append(over, fmt.Sprintf("%d %s", c, sev))
		}
	}
	if n > 0 {
		return fmt.Sprintf("gate %s: %s at or above %s block %s under %s's rule (%s)", g.Kind, strings.Join(sortedDesc(over), ", "), rule.Block, e.Name, judged, ref)
	}
	return ""
}

func sortedDesc(l []string) []string {
	// Severity names sort by rank: CRITICAL, HIGH, MEDIUM, LOW, INFO.
	rank := func(s string) gate.Severity { _, sev, _ := strings.Cut(s, " "); return gate.SeverityOf(sev) }
	for i := 1; i < len(l); i++ {
		for j := i; j > 0 && rank(l[j]) > rank(l[j-1]); j-- {
			l[j], l[j-1] = l[j-1], l[j]
		}
	}
	return l
}
