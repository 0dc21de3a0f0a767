package promote

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"gopkg.in/yaml.v3"

	"github.com/paved/paved/internal/deploy"
	"github.com/paved/paved/internal/deploy/gitops"
	"github.com/paved/paved/internal/pipeline"
)

// Approval policies of an environment.
const (
	ApprovalRisk = "risk" // by the changeset's risk: low auto, medium one approver, high two
	ApprovalNone = "none" // never needs an approver (policies still apply)
)

// Config is the environments section of the server's config file.
type Config struct {
	// Environments in promotion order: dev, staging, prod (any names).
	Environments []Environment `yaml:"environments" json:"environments"`
	Risk         Risk          `yaml:"risk" json:"risk"`
	// Previews configures pull request previews (label default preview).
	Previews Previews `yaml:"previews" json:"previews"`
	// Tick is how often the server looks for new freight, re-checks blocked promotions and
	// auto-promotes. Default 2s.
	Tick Duration `yaml:"tick" json:"tick,omitempty"`
}

// Environment is one stage of the promotion path.
type Environment struct {
	Name string `yaml:"name" json:"name"`
	// Soak is how long freight must have run in the previous environment before it may
	// enter this one.
	Soak Duration `yaml:"soak" json:"soak,omitempty"`
	// AutoPromote: freight verified in the previous environment is promoted here by itself
	// once Soak elapsed. Default: on for every environment but the last.
	AutoPromote *bool `yaml:"auto_promote" json:"auto_promote"`
	// Approval is risk (default) or none, with an optional timeout; Approvers may approve
	// (empty: any user but the change's author).
	Approval  ApprovalPolicy `yaml:"approval" json:"approval"`
	Approvers []string       `yaml:"approvers" json:"approvers"`
	// Coverage is the least test coverage the freight's run must have reported (its
	// stages' reports: {coverage: FILE}); nil: no minimum.
	Coverage *CoveragePolicy `yaml:"coverage" json:"coverage,omitempty"`
	// GitOps, when set, makes promotions into this environment commit the digest to a
	// config repository and wait for its health signal instead of deploying (docs/gitops.md).
	GitOps *GitOps `yaml:"gitops" json:"gitops,omitempty"`
	// HotfixUsers may ask for hotfix promotions into this environment (empty: nobody;
	// a stand-in for roles until paved has them).
	HotfixUsers []string `yaml:"hotfix_users" json:"hotfix_users,omitempty"`
	// Gates names the gate policy's environment whose rule judges the freight's findings
	// for this environment (dev, staging, production in the default policy). Default: Name;
	// a name the policy lacks gets its strictest rule.
	Gates string `yaml:"gates" json:"gates,omitempty"`
	// Artifact names which of the freight's artifacts (by the deploy stage that deployed
	// it) this environment runs; empty: the freight's only one.
	Artifact string `yaml:"artifact" json:"artifact,omitempty"`
	// Deploy is the deployment's settings, as a pipeline's deploy: map (environment is set
	// to Name). Empty: the settings the previous environment's deployment of it used.
	Deploy map[string]any `yaml:"deploy" json:"deploy,omitempty"`

	spec *deploy.Spec
}

// ApprovalPolicy is an environment's approval: written as a word (approval: risk) or a
// map (approval: {mode: risk, timeout: 4h, on_timeout: approve}).
type ApprovalPolicy struct {
	// Mode is risk (default) or none.
	Mode string `yaml:"mode" json:"mode"`
	// Timeout is how long a promotion may wait for its approvals; 0: for ever. When it
	// elapses, OnTimeout decides: reject (default) or approve. A security-critical change
	// (see Risk.Critical, or a gate with findings) is never approved by a timeout: it is
	// rejected as expired.
	Timeout   Duration `yaml:"timeout" json:"timeout,omitempty"`
	OnTimeout string   `yaml:"on_timeout" json:"on_timeout,omitempty"`
}

// What a timeout does.
const (
	OnTimeoutReject  = "reject"
	OnTimeoutApprove = "approve"
)

// UnmarshalYAML reads the word or the map.
func (a *ApprovalPolicy) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		a.Mode = n.Value
		return nil
	}
	type plain ApprovalPolicy
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*a = ApprovalPolicy(p)
	return nil
}

// GitOps is an environment's gitops target: gitops.Config with durations read as "5m".
type GitOps struct {
	gitops.Config `yaml:",inline"`
	Timeout       Duration `yaml:"timeout" json:"timeout,omitempty"`
	Poll          Duration `yaml:"poll" json:"poll,omitempty"`
}

// CoveragePolicy is the least coverage, in percent, freight needs to enter an environment.
type CoveragePolicy struct {
	Min float64 `yaml:"min" json:"min"`
}

// Risk scores changesets. A file matching a High glob makes the changeset high; one that
// matches neither list makes it medium; only Low files make it low.
type Risk struct {
	Low  []string `yaml:"low" json:"low"`
	High []string `yaml:"high" json:"high"`
	// Critical marks a change security-critical: an approval timeout never approves it.
	Critical []string `yaml:"critical" json:"critical"`
}

// DefaultRisk is used for an empty list in the config.
var DefaultRisk = Risk{
	Low: []string{"**/*.md", "docs/**", "**/*.txt", "**/*.css", "**/*.rst", "LICENSE", "**/flags/*.json", "**/*.png", "**/*.svg"},
	High: []string{"**/migrations/**", "**/migration/**", "**/*.sql", "**/auth/**", "**/payment/**", "**/payments/**",
		"**/*.tf", "**/*.tfvars", "**/charts/**", "**/helm/**", "**/k8s/**", "**/kubernetes/**", "Dockerfile", "**/Dockerfile"},
	Critical: []string{"**/migrations/**", "**/migration/**", "**/*.sql", "**/auth/**", "**/payment/**", "**/payments/**",
		"**/security/**", "**/crypto/**", "**/secrets/**", "**/pii/**"},
}

// Duration reads "30s", "5m" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration like 30s or 5m", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes it as "30s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// ErrConfig is wrapped by every config problem.
var ErrConfig = errors.New("promote: bad environments config")

// LoadConfig reads a config file (YAML with an environments: list).
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("promote: %w", err)
	}
	return ParseConfig(path, b)
}

// ParseConfig parses and checks a config; errors name name:line.
func ParseConfig(name string, b []byte) (Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return Config{}, fmt.Errorf("%w: %s: %v", ErrConfig, name, err)
	}
	var c Config
	if err := doc.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("%w: %s: %v", ErrConfig, name, err)
	}
	lines := envLines(&doc)
	var errs []error
	seen := map[string]bool{}
	for i := range c.Environments {
		e := &c.Environments[i]
		at := fmt.Sprintf("%s:%d", name, lines[i])
		switch {
		case e.Name == "":
			errs = append(errs, fmt.Errorf("%s: environment %d has no name: give it name: dev (or staging, prod...)", at, i+1))
		case seen[e.Name]:
			errs = append(errs, fmt.Errorf("%s: environment %s is listed twice: each name once, in promotion order", at, e.Name))
		}
		seen[e.Name] = true
		if e.Approval.Mode == "" {
			e.Approval.Mode = ApprovalRisk
		}
		if e.Approval.Mode != ApprovalRisk && e.Approval.Mode != ApprovalNone {
			errs = append(errs, fmt.Errorf("%s: approval %q of %s: use risk or none", at, e.Approval.Mode, e.Name))
		}
		if e.Approval.OnTimeout == "" {
			e.Approval.OnTimeout = OnTimeoutReject
		}
		if e.Approval.OnTimeout != OnTimeoutReject && e.Approval.OnTimeout != OnTimeoutApprove {
			errs = append(errs, fmt.Errorf("%s: approval on_timeout %q of %s: use approve or reject", at, e.Approval.OnTimeout, e.Name))
		}
		if g := e.GitOps; g != nil {
			g.Config.Timeout, g.Config.Poll = time.Duration(g.Timeout), time.Duration(g.Poll)
			if err := g.Config.Validate(); err != nil {
				errs = append(errs, fmt.Errorf("%s: gitops of %s: %v", at, e.Name, err))
			}
			g.Timeout, g.Poll = Duration(g.Config.Timeout), Duration(g.Config.Poll) // with their defaults, for the API
		}
		if c := e.Coverage; c != nil && (c.Min < 0 || c.Min > 100) {
			errs = append(errs, fmt.Errorf("%s: coverage min %g of %s: give a percentage from 0 to 100", at, c.Min, e.Name))
		}
		if e.AutoPromote == nil {
			auto := i < len(c.Environments)-1
			e.AutoPromote = &auto
		}
		if e.Deploy != nil {
			spec, err := specOf(e.Name, e.Deploy)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: deploy of %s: %v", at, e.Name, err))
			}
			e.spec = &spec
		}
	}
	if c.Previews.Label == "" {
		c.Previews.Label = DefaultPreviewLabel
	}
	for i, e := range c.Environments {
		if isPreview(e.Name) {
			errs = append(errs, fmt.Errorf("%s:%d: environment %s: names pr-NUMBER are pull request previews; pick another name", name, lines[i], e.Name))
		}
	}
	if len(c.Risk.Low) == 0 {
		c.Risk.Low = DefaultRisk.Low
	}
	if len(c.Risk.High) == 0 {
		c.Risk.High = DefaultRisk.High
	}
	if len(c.Risk.Critical) == 0 {
		c.Risk.Critical = DefaultRisk.Critical
	}
	for _, g := range append(append(append([]string{}, c.Risk.Low...), c.Risk.High...), c.Risk.Critical...) {
		if !doublestar.ValidatePattern(g) {
			errs = append(errs, fmt.Errorf("%s: risk glob %q is not a valid pattern (use *, ** and ?)", name, g))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return c, nil
}

func specOf(env string, m map[string]any) (deploy.Spec, error) {
	m["environment"] = env
	b, err := json.Marshal(m)
	if err != nil {
		return deploy.Spec{}, err
	}
	var d pipeline.Deploy
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return deploy.Spec{}, err
	}
	return deploy.SpecFrom(&d)
}

// envLines finds the line of each item of environments: for error messages.
func envLines(doc *yaml.Node) []int {
	out := make([]int, 1000)
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return out
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "environments" {
			for j, it := range m.Content[i+1].Content {
				if j < len(out) {
					out[j] = it.Line
				}
			}
		}
	}
	return out
}

// Env returns an environment by name and its index in the order.
func (c Config) Env(name string) (Environment, int, bool) {
	for i, e := range c.Environments {
		if e.Name == name {
			return e, i, true
		}
	}
	return Environment{}, -1, false
}

// Names lists the environments in order.
func (c Config) Names() []string {
	out := make([]string, len(c.Environments))
	for i, e := range c.Environments {
		out[i] = e.Name
	}
	return out
}
