package promote

import (
	"strings"
	"testing"

	"github.com/paved/paved/internal/run"
)

func TestGatesJudgedPerEnvironment(t *testing.T) {
	t.Parallel()
	medium := []run.Gate{{Kind: "gate/vulns", Decision: "pass", Counts: map[string]int{"MEDIUM": 2, "LOW": 1}}}
	for _, c := range []struct {
		env  Environment
		want string // substring of the reason; "" means not blocked
	}{
		{Environment{Name: "dev"}, ""},
		{Environment{Name: "staging"}, ""},
		{Environment{Name: "prod"}, "2 MEDIUM at or above MEDIUM block prod under production (the strictest"},
		{Environment{Name: "prod", Gates: "staging"}, ""},
		{Environment{Name: "live", Gates: "production"}, "under production's rule"},
	} {
		got, _ := gatesBlock(c.env, medium, false)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("gatesBlock(%+v) = %q, want %q", c.env, got, c.want)
		}
	}
	blocked := []run.Gate{{Kind: "gate/secrets", Decision: "block", Reason: "1 finding at or above LOW block dev: aws key"}}
	if got, _ := gatesBlock(Environment{Name: "dev"}, blocked, false); !strings.Contains(got, "blocked in its run") {
		t.Errorf("a gate that blocked = %q", got)
	}
}

// A hotfix enforces secret detection and CRITICAL vulnerabilities only, and lists what the
// other gates would have said.
func TestGatesOfAHotfix(t *testing.T) {
	t.Parallel()
	prod := Environment{Name: "prod"}
	sarif := run.Gate{Kind: "gate/sarif", Decision: "block", Reason: "2 HIGH", Counts: map[string]int{"HIGH": 2}}
	highVulns := run.Gate{Kind: "gate/vulns", Decision: "pass", Counts: map[string]int{"HIGH": 1}}
	block, skipped := gatesBlock(prod, []run.Gate{sarif, highVulns}, true)
	if block != "" || len(skipped) != 2 || !strings.Contains(skipped[0], "gate/sarif (would block: gate gate/sarif blocked in its run") ||
		!strings.Contains(skipped[1], "gate/vulns (would block: gate gate/vulns: 1 HIGH") {
		t.Errorf("hotfix over sarif and HIGH vulns = %q, %q", block, skipped)
	}
	for _, g := range []run.Gate{
		{Kind: "gate/secrets", Decision: "block", Reason: "aws key", Counts: map[string]int{"HIGH": 1}},
		{Kind: "gate/vulns", Decision: "block", Reason: "1 CRITICAL", Counts: map[string]int{"CRITICAL": 1}},
	} {
		if block, _ := gatesBlock(prod, []run.Gate{sarif, g}, true); !strings.Contains(block, g.Kind) {
			t.Errorf("a hotfix skipped %s: %q", g.Kind, block)
		}
	}
}
