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
		got := gatesBlock(c.env, medium)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("gatesBlock(%+v) = %q, want %q", c.env, got, c.want)
		}
	}
	blocked := []run.Gate{{Kind: "gate/secrets", Decision: "block", Reason: "1 finding at or above LOW block dev: aws key"}}
	if got := gatesBlock(Environment{Name: "dev"}, blocked); !strings.Contains(got, "blocked in its run") {
		t.Errorf("a gate that blocked = %q", got)
	}
}
