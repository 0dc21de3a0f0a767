// Package pipeline reads the pipeline file (.paved.yml): it parses the YAML with positions,
// validates it (reporting every problem at once as FILE:LINE:COL), expands matrices into
// stages, applies defaults and compiles the stages into a DAG in topological order.
//
// A compiled Pipeline is plain data with JSON tags: a run stores it in its RunCreated event,
// so the run can be replayed after a crash without reading the file again.
package pipeline

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// DefaultTimeout bounds a stage that sets no timeout (GitLab's default job timeout).
const DefaultTimeout = 60 * time.Minute

// Pipeline is a compiled, valid pipeline file.
type Pipeline struct {
	Name        string       `json:"name"`
	On          Triggers     `json:"on"`
	Concurrency *Concurrency `json:"concurrency,omitempty"`
	// Manifests are the directories (relative to the repository root) holding the
	// Kubernetes manifests a pull request's comment diffs between base and head: plain YAML
	// or a kustomization. Empty: detected (internal/forge, docs/forge.md).
	Manifests []string `json:"manifests,omitempty"`
	// Stages in a topological order: every stage comes after all its needs. Among stages
	// whose order the DAG leaves free, file order is kept.
	Stages []*Stage `json:"stages"`
}

// Stage is one node of the DAG: one isolated unit with its own workspace. A matrix stage
// in the file becomes one Stage per combination.
type Stage struct {
	// Name is unique in the pipeline. For a matrix expansion it is Base followed by the
	// combination's values in brackets, in the order of the matrix keys in the file:
	// "test[1.22,linux]".
	Name string `json:"name"`
	// Base is the stage's key in the file (equal to Name unless the stage has a matrix).
	Base string `json:"base,omitempty"`
	// Matrix holds this expansion's values, set as environment variables of the same name.
	Matrix map[string]string `json:"matrix,omitempty"`
	// Needs are expanded stage names (a need on a matrix stage means all its expansions).
	Needs []string `json:"needs,omitempty"`
	Steps []Step   `json:"steps,omitempty"`
	// Env is the pipeline env with the stage's own merged over it and, for a matrix
	// expansion, the Matrix values over both: everything the executor sets.
	Env map[string]EnvVar `json:"env,omitempty"`
	// Shell runs each step: "sh" (default: sh -e -c) or "bash" (bash --noprofile --norc -eo pipefail -c).
	Shell     string        `json:"shell"`
	Timeout   time.Duration `json:"timeout"` // default DefaultTimeout
	Retries   int           `json:"retries,omitempty"`
	When      *When         `json:"when,omitempty"`
	Artifacts []string      `json:"artifacts,omitempty"` // globs relative to the workspace
	Cache     []Cache       `json:"cache,omitempty"`
	Uses      string        `json:"uses,omitempty"` // a built-in stage kind such as gate/secrets
	// With configures a uses: stage: each key (from Options.KindKeys) holds its values, a
	// scalar being a list of one, as written.
	With   map[string][]string `json:"with,omitempty"`
	Deploy *Deploy             `json:"deploy,omitempty"`
	Image  string              `json:"image,omitempty"` // for container executors; the local executor ignores it
	// RunsOn selects the agents that may run the stage: every label given must be one of
	// the agent's (paved agent --labels). Set, the stage runs on an agent, never in the
	// server's own sandbox.
	RunsOn map[string]string `json:"runs_on,omitempty"`
	// Resources are the stage's CPU and memory requests and limits, for container executors
	// (the Kubernetes executor); the local executor ignores them.
	Resources *Resources `json:"resources,omitempty"`
	Reports   *Reports   `json:"reports,omitempty"`
	// IDToken asks for a workload identity token (a JWT signed by paved) in the stage's
	// environment as PAVED_ID_TOKEN (internal/identity, docs/identity.md).
	IDToken *IDToken `json:"id_token,omitempty"`
	// Phase is what the stage does for the run's phase: build, test, deploy or verify.
	// Set with `phase:`; otherwise deploy for deploy stages, test for uses: gate/* and for
	// names containing test, lint, check, scan or vet, build for the rest.
	Phase string `json:"phase"`
	Pos   Pos    `json:"pos"` // where the stage's key is in the file
}

// Step is one command of a stage; all steps of a stage share its workspace and sandbox.
type Step struct {
	Name string `json:"name"` // given, or the first line of Run cut to 60 characters
	Run  string `json:"run"`
	Pos  Pos    `json:"pos"`
}

// EnvVar is a literal value or a reference to a secret resolved at run time. Secret values
// never appear in the pipeline, events or logs (they are masked as ***).
type EnvVar struct {
	Value  string `json:"value,omitempty"`
	Secret string `json:"secret,omitempty"` // name of the secret; Value is empty when set
}

// When limits a stage to matching triggers; a stage that does not match is skipped.
// Empty lists match everything.
type When struct {
	Branches []string `json:"branches,omitempty"` // globs (doublestar) on the branch name
	Events   []string `json:"events,omitempty"`   // push, pull_request, tag, manual, cron
	Paths    []string `json:"paths,omitempty"`    // globs; at least one changed file must match
}

// Triggers is the `on:` section; the ingest layer routes triggers with it.
type Triggers struct {
	Push        *Filter  `json:"push,omitempty"`
	PullRequest *Filter  `json:"pull_request,omitempty"`
	Tag         *Filter  `json:"tag,omitempty"`
	Manual      bool     `json:"manual,omitempty"`
	Cron        []string `json:"cron,omitempty"`
}

// Filter narrows a trigger kind by globs. Empty lists match everything.
type Filter struct {
	Branches    []string `json:"branches,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	Paths       []string `json:"paths,omitempty"`
	PathsIgnore []string `json:"paths_ignore,omitempty"`
	Labels      []string `json:"labels,omitempty"` // pull_request only: the PR must carry one
}

// Concurrency limits runs sharing a group (expanded from trigger variables such as $PAVED_BRANCH).
type Concurrency struct {
	Group            string `json:"group"`
	CancelSuperseded bool   `json:"cancel_superseded,omitempty"`
	Limit            int    `json:"limit,omitempty"` // default 1
}

// Cache declares a dependency cache; the key is derived from the contents of KeyFiles.
type Cache struct {
	Key         string   `json:"key,omitempty"`
	KeyFiles    []string `json:"key_files,omitempty"`
	Paths       []string `json:"paths"`
	RestoreKeys []string `json:"restore_keys,omitempty"`
}

// Deploy makes the stage a deployment of the run's artifacts to an environment. Durations
// are kept as written (validated Go durations); internal/deploy fills in the defaults
// (docs/deploy.md).
type Deploy struct {
	Environment string `json:"environment"`
	Strategy    string `json:"strategy"` // rolling (default), blue-green, canary
	// Artifact is the path, among the artifacts of the stages upstream, of the service's
	// executable. Default: the only executable file among them.
	Artifact string            `json:"artifact,omitempty"`
	Replicas int               `json:"replicas,omitempty"` // default 1
	Port     int               `json:"port,omitempty"`     // default: a free port, kept
	Args     []string          `json:"args,omitempty"`
	Env      map[string]string `json:"env,omitempty"`

	Startup          *DeployProbe `json:"startup,omitempty"`
	Readiness        *DeployProbe `json:"readiness,omitempty"`
	Liveness         *DeployProbe `json:"liveness,omitempty"`
	ReadinessTimeout string       `json:"readiness_timeout,omitempty"`
	Drain            string       `json:"drain,omitempty"`

	MaxSurge       string `json:"max_surge,omitempty"`       // count or percentage
	MaxUnavailable string `json:"max_unavailable,omitempty"` // count or percentage
	Steps          []int  `json:"steps,omitempty"`
	Pause          string `json:"pause,omitempty"`
	PreviewPort    int    `json:"preview_port,omitempty"`
	KeepWarm       string `json:"keep_warm,omitempty"`

	Analysis  *DeployAnalysis `json:"analysis,omitempty"`
	Smoke     []DeploySmoke   `json:"smoke,omitempty"`
	SLOWindow string          `json:"slo_window,omitempty"`

	// Target is local (default) or kubernetes; Kubernetes says where, for kubernetes.
	Target     string            `json:"target,omitempty"`
	Kubernetes *DeployKubernetes `json:"kubernetes,omitempty"`
}

// DeployProbe is an HTTP probe of a replica, as in Kubernetes.
type DeployProbe struct {
	Path             string `json:"path,omitempty"`
	InitialDelay     string `json:"initial_delay,omitempty"`
	Period           string `json:"period,omitempty"`
	Timeout          string `json:"timeout,omitempty"`
	SuccessThreshold int    `json:"success_threshold,omitempty"`
	FailureThreshold int    `json:"failure_threshold,omitempty"`
}

// DeployAnalysis are a deployment's analysis settings (Argo Rollouts' vocabulary).
type DeployAnalysis struct {
	Interval              string            `json:"interval,omitempty"`
	Count                 int               `json:"count,omitempty"`
	FailureLimit          int               `json:"failure_limit,omitempty"`
	ConsecutiveErrorLimit int               `json:"consecutive_error_limit,omitempty"`
	MinSamples            int               `json:"min_samples,omitempty"`
	InconclusiveTimeout   string            `json:"inconclusive_timeout,omitempty"`
	MaxErrorRate          float64           `json:"max_error_rate,omitempty"`   // a fraction; "0.1%" in the file
	MaxP99Increase        float64           `json:"max_p99_increase,omitempty"` // a fraction; "10%" in the file
	P99Slack              string            `json:"p99_slack,omitempty"`
	MaxRestarts           int               `json:"max_restarts,omitempty"`
	MemoryLimit           int64             `json:"memory_limit,omitempty"` // bytes; "256Mi" in the file
	Source                string            `json:"source,omitempty"`       // proxy (default) or prometheus
	Prometheus            map[string]string `json:"prometheus,omitempty"`   // url, requests, error_rate, p99
}

// DeploySmoke is an HTTP check of a deployment.
type DeploySmoke struct {
	Path   string `json:"path"`
	Status int    `json:"status,omitempty"`
	Body   string `json:"body,omitempty"`
}

// IDToken is a stage's request for a workload identity token.
type IDToken struct {
	Audience string `json:"audience"` // the token's aud claim, required
	// Lifetime is how long the token is valid; 0 means the issuer's default (10 minutes).
	Lifetime time.Duration `json:"lifetime,omitempty"`
}

// Resources are Kubernetes quantities ("500m", "2", "512Mi"); empty means none.
type Resources struct {
	CPU         string `json:"cpu,omitempty"`          // request
	Memory      string `json:"memory,omitempty"`       // request
	CPULimit    string `json:"cpu_limit,omitempty"`    // default: none
	MemoryLimit string `json:"memory_limit,omitempty"` // default: none
}

// DeployKubernetes is where a deployment with target kubernetes goes (docs/kubernetes.md).
type DeployKubernetes struct {
	Context       string `json:"context,omitempty"` // kubeconfig context, or in-cluster
	Namespace     string `json:"namespace,omitempty"`
	Kubeconfig    string `json:"kubeconfig,omitempty"`
	Image         string `json:"image,omitempty"`
	ContainerPort int    `json:"container_port,omitempty"`
	// HTTPRoute names a Gateway API HTTPRoute whose weights split a canary's traffic.
	HTTPRoute string `json:"http_route,omitempty"`
}

// Reports names files a stage produces for paved to read (test results, coverage).
type Reports struct {
	JUnit    string `json:"junit,omitempty"`
	Coverage string `json:"coverage,omitempty"`
}

// Pos is a position in the pipeline file (1-based).
type Pos struct {
	Line int `json:"line"`
	Col  int `json:"col"`
}

// Stage returns the stage with the given name, or nil.
func (p *Pipeline) Stage(name string) *Stage {
	for _, s := range p.Stages {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Error is one problem in a pipeline file.
type Error struct {
	File string
	Pos  Pos
	Msg  string
}

func (e Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Pos.Line, e.Pos.Col, e.Msg)
}

// ErrorList is every problem found in a file, in file order. Compile returns it as its error.
type ErrorList []Error

func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// MarshalJSON keeps durations readable in events and golden files.
func (s Stage) MarshalJSON() ([]byte, error) {
	type plain Stage
	return json.Marshal(struct {
		plain
		Timeout string `json:"timeout"`
	}{plain(s), s.Timeout.String()})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (s *Stage) UnmarshalJSON(b []byte) error {
	type plain Stage
	var v struct {
		plain
		Timeout string `json:"timeout"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = Stage(v.plain)
	if v.Timeout != "" {
		d, err := time.ParseDuration(v.Timeout)
		if err != nil {
			return fmt.Errorf("pipeline: stage %s: timeout: %w", v.Name, err)
		}
		s.Timeout = d
	}
	return nil
}
