package gate

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
)

// Decisions of a gate.
const (
	Pass  = "pass"
	Warn  = "warn"
	Block = "block"
)

// Rule is what one environment does with findings: those at Block or above block the run,
// those at Warn or above (and below Block) warn; None never fires.
type Rule struct {
	Block Severity
	Warn  Severity
}

// stricter reports whether r blocks more than o (or, blocking alike, warns more).
func (r Rule) stricter(o Rule) bool {
	rb, ob := orNever(r.Block), orNever(o.Block)
	if rb != ob {
		return rb < ob
	}
	return orNever(r.Warn) < orNever(o.Warn)
}

// orNever ranks None above Critical: a rule that never blocks is the laxest.
func orNever(s Severity) Severity {
	if s == None {
		return Critical + 1
	}
	return s
}

// Policy maps environments to rules. Its Name and Version are recorded with every decision
// so that a run says which policy judged it.
type Policy struct {
	Name    string
	Version int
	Rules   map[string]Rule
}

// DefaultPolicy is the seed's: dev warns on HIGH and above, staging blocks HIGH and above,
// production blocks MEDIUM and above; each warns one step below where it blocks.
func DefaultPolicy() Policy {
	return Policy{Name: "paved-default", Version: 1, Rules: map[string]Rule{
		"dev":        {Block: None, Warn: High},
		"staging":    {Block: High, Warn: Medium},
		"production": {Block: Medium, Warn: Low},
	}}
}

// Ref names the policy and its version, e.g. paved-default@1.
func (p Policy) Ref() string { return fmt.Sprintf("%s@%d", p.Name, p.Version) }

// Strictest is the environment whose rule blocks the most; it judges an environment the
// policy does not name and a gate that guards none.
func (p Policy) Strictest() string {
	var best string
	for _, name := range slices.Sorted(maps.Keys(p.Rules)) {
		if best == "" || p.Rules[name].stricter(p.Rules[best]) {
			best = name
		}
	}
	return best
}

// Rule is the environment's rule, or the strictest one for an environment it does not name.
func (p Policy) Rule(env string) (Rule, bool) {
	if r, ok := p.Rules[env]; ok {
		return r, true
	}
	return p.Rules[p.Strictest()], false
}

// Environment says which environment's rule judges the gate stage: with: environment when
// set; else the strictest environment a deploy stage downstream of it deploys to; else the
// policy's strictest. from is "with", "deploy" or "default".
func (p Policy) Environment(pl *pipeline.Pipeline, stage string, with map[string][]string) (env, from string) {
	if v := with["environment"]; len(v) > 0 && v[0] != "" {
		return v[0], "with"
	}
	var envs []string
	if pl != nil {
		down := downstream(pl, stage)
		for _, s := range pl.Stages {
			if down[s.Name] && s.Deploy != nil && s.Deploy.Environment != "" {
				envs = append(envs, s.Deploy.Environment)
			}
		}
	}
	if len(envs) == 0 {
		return p.Strictest(), "default"
	}
	slices.SortFunc(envs, func(a, b string) int {
		ra, _ := p.Rule(a)
		rb, _ := p.Rule(b)
		switch {
		case ra.stricter(rb):
			return -1
		case rb.stricter(ra):
			return 1
		}
		return cmp.Compare(a, b)
	})
	return envs[0], "deploy"
}

// downstream is every stage that needs stage, directly or not.
func downstream(pl *pipeline.Pipeline, stage string) map[string]bool {
	down := map[string]bool{stage: true}
	for changed := true; changed; {
		changed = false
		for _, s := range pl.Stages {
			if down[s.Name] {
				continue
			}
			for _, n := range s.Needs {
				if down[n] {
					down[s.Name], changed = true, true
					break
				}
			}
		}
	}
	delete(down, stage)
	return down
}

// Decide judges findings under rule and fills the gate's decision, reason and counts.
// Findings are sorted most severe first.
func Decide(g *run.Gate, rule Rule, findings []run.Finding) {
	slices.SortStableFunc(findings, func(a, b run.Finding) int {
		return cmp.Or(cmp.Compare(SeverityOf(b.Severity), SeverityOf(a.Severity)),
			cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Rule, b.Rule))
	})
	g.BlockAt, g.WarnAt = "", ""
	if rule.Block != None {
		g.BlockAt = rule.Block.String()
	}
	if rule.Warn != None {
		g.WarnAt = rule.Warn.String()
	}
	g.Counts = map[string]int{}
	var blocking, warning []run.Finding
	for _, f := range findings {
		s := SeverityOf(f.Severity)
		g.Counts[s.String()]++
		switch {
		case rule.Block != None && s >= rule.Block:
			blocking = append(blocking, f)
		case rule.Warn != None && s >= rule.Warn:
			warning = append(warning, f)
		}
	}
	if len(g.Counts) == 0 {
		g.Counts = nil
	}
	env := g.Environment
	switch {
	case len(blocking) > 0:
		g.Decision = Block
		g.Reason = fmt.Sprintf("%s at or above %s block %s: %s", plural(len(blocking), "finding"), rule.Block, env, summary(blocking))
	case len(warning) > 0:
		g.Decision = Warn
		g.Reason = fmt.Sprintf("%s at or above %s warn in %s: %s", plural(len(warning), "finding"), rule.Warn, env, summary(warning))
	default:
		g.Decision = Pass
		g.Reason = fmt.Sprintf("%s, none at or above what %s warns on", plural(len(findings), "finding"), env)
		if len(findings) == 0 {
			g.Reason = "no findings"
		}
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// summary names the first few findings, each as rule at file:line (or its object or package).
func summary(fs []run.Finding) string {
	const show = 3
	var parts []string
	for i, f := range fs {
		if i == show {
			parts = append(parts, fmt.Sprintf("and %d more", len(fs)-show))
			break
		}
		parts = append(parts, Where(f))
	}
	return strings.Join(parts, ", ")
}

// Where is a finding in a few words: "aws-access-token at config/prod.env:3".
func Where(f run.Finding) string {
	s := f.Rule
	switch {
	case f.Package != "":
		s += " in " + f.Package + "@" + f.Version
	case f.Object != "":
		s += " on " + f.Object
	}
	if f.File != "" {
		s += " at " + f.File
		if f.Line > 0 {
			s += fmt.Sprintf(":%d", f.Line)
		}
	}
	return s
}
