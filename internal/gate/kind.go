package gate

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/schedule"
)

// Input is what a scanner gets for one gate stage.
type Input struct {
	// Dir is the workspace: the commit's tree, with the upstream stages' artifacts laid over
	// it when the kind asks for them. The scanner may read it freely; it is removed after.
	Dir string
	// With are the stage's with: options.
	With map[string][]string
	// Job is the stage attempt, for what the workspace does not hold (Info, Env).
	Job *schedule.KindJob
	// Log writes one line to the stage's log. Never pass it a raw match.
	Log func(string)
}

// Output is what a scanner found.
type Output struct {
	// Findings are already redacted.
	Findings []run.Finding
	// Suppressed counts findings a baseline or suppression file waived.
	Suppressed int
	// Artifacts are files the scanner stored in the artifact store (an SBOM).
	Artifacts []execute.Artifact
	// Skipped, when set, says why the scanner checked nothing although it was not told
	// wrong (no database configured yet): the gate warns with this reason, and a policy
	// cannot pass what was never looked at.
	Skipped string
}

// ScanFunc turns a workspace into findings.
type ScanFunc func(ctx context.Context, in Input) (Output, error)

// MaxFindings bounds the findings one GateEvaluated event carries; the rest are counted in
// Truncated (and still decide).
const MaxFindings = 500

// Kind is one gate stage kind: a scanner plus the policy that judges what it finds.
type Kind struct {
	// Name is the kind's name, e.g. gate/secrets.
	Name string
	Scan ScanFunc
	// Policy judges findings per environment. Default: DefaultPolicy().
	Policy Policy
	// Fixed, when set, judges this kind's findings alike in every environment (gate/secrets
	// blocks any secret, gate/policy any deny); with: block_at and warn_at still override it.
	Fixed *Rule
	// Blobs is the artifact store upstream artifacts are read from. Required with Artifacts.
	Blobs *cache.Blobs
	// Artifacts lays the upstream stages' artifacts over the tree (SARIF reports, rendered
	// manifests, an SBOM).
	Artifacts bool
	// TempDir holds workspaces while they are scanned (made if missing). Default:
	// os.TempDir(); paved uses <data>/gates/tmp, which no sandboxed step can see.
	TempDir string
}

var _ schedule.Kind = (*Kind)(nil)

// ErrOption is wrapped when a stage's with: options are wrong.
var ErrOption = errors.New("gate: bad with: option")

// Run scans the stage's workspace, records one GateEvaluated event and fails the stage when
// the decision is block. Repeating it repeats the scan: it keeps no state.
func (k *Kind) Run(ctx context.Context, job schedule.KindJob, rec schedule.KindRecorder) (schedule.KindResult, error) {
	pol := k.Policy
	if pol.Rules == nil {
		pol = DefaultPolicy()
	}
	var with map[string][]string
	if job.Def != nil {
		with = job.Def.With
	}
	g := run.Gate{Kind: k.Name, Policy: pol.Ref()}
	var pl = job.Info.Pipeline
	g.Environment, g.EnvironmentFrom = pol.Environment(pl, job.Stage, with)
	rule, known := pol.Rule(g.Environment)
	if !known {
		rec.Log(fmt.Sprintf("environment %s is not in policy %s: judging it as %s", g.Environment, g.Policy, pol.Strictest()))
	}
	if k.Fixed != nil {
		rule = *k.Fixed
		g.Policy += " (" + k.Name + " judges every environment alike)"
	}
	rule, err := overrideRule(rule, with)
	if err != nil {
		return schedule.KindResult{}, err
	}

	if k.TempDir != "" {
		if err := os.MkdirAll(k.TempDir, 0o700); err != nil {
			return schedule.KindResult{}, fmt.Errorf("gate: workspace: %w", err)
		}
	}
	dir, err := os.MkdirTemp(k.TempDir, "paved-gate-")
	if err != nil {
		return schedule.KindResult{}, fmt.Errorf("gate: workspace: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := Checkout(ctx, job.Info.Source, dir); err != nil {
		return schedule.KindResult{}, err
	}
	if k.Artifacts && len(job.ArtifactsIn) > 0 {
		if k.Blobs == nil {
			return schedule.KindResult{}, errors.New("gate: no artifact store to read upstream artifacts from")
		}
		if err := Materialise(dir, job.ArtifactsIn, k.Blobs); err != nil {
			return schedule.KindResult{}, err
		}
	}
	out, err := k.Scan(ctx, Input{Dir: dir, With: with, Job: &job, Log: rec.Log})
	if err != nil {
		return schedule.KindResult{}, fmt.Errorf("%s: %w", k.Name, err)
	}

	Decide(&g, rule, out.Findings)
	if out.Skipped != "" && g.Decision == Pass {
		g.Decision, g.Reason = Warn, out.Skipped
	}
	g.Suppressed = out.Suppressed
	g.Findings = out.Findings
	if len(g.Findings) > MaxFindings {
		g.Truncated = len(g.Findings) - MaxFindings
		g.Findings = g.Findings[:MaxFindings]
	}
	for _, f := range out.Findings {
		line := f.Severity + " " + Where(f)
		if f.Message != "" {
			line += ": " + f.Message
		}
		if f.Match != "" {
			line += " [" + f.Match + "]"
		}
		rec.Log(line)
	}
	if out.Suppressed > 0 {
		rec.Log(fmt.Sprintf("%s suppressed by the baseline", plural(out.Suppressed, "finding")))
	}
	rec.Log(fmt.Sprintf("%s under %s in %s (%s): %s", g.Decision, g.Policy, g.Environment, g.EnvironmentFrom, g.Reason))
	if err := rec.Event(run.Event{Type: run.GateEvaluated, Gate: &g}); err != nil {
		return schedule.KindResult{}, err
	}
	res := schedule.KindResult{Artifacts: out.Artifacts}
	if g.Decision == Block {
		res.Failed, res.Reason = true, g.Reason
	}
	return res, nil
}

// overrideRule applies with: block_at and warn_at.
func overrideRule(r Rule, with map[string][]string) (Rule, error) {
	for key, dst := range map[string]*Severity{"block_at": &r.Block, "warn_at": &r.Warn} {
		v := with[key]
		if len(v) == 0 {
			continue
		}
		s, err := ParseSeverity(v[0])
		if err != nil {
			return r, fmt.Errorf("%w: %s: %w", ErrOption, key, err)
		}
		*dst = s
	}
	return r, nil
}
