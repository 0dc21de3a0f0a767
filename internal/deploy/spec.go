package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/paved/paved/internal/deploy/local"
)

// Strategies.
const (
	Rolling   = "rolling"
	BlueGreen = "blue-green"
	Canary    = "canary"
)

// Spec is one deployment's settings: the deploy: map of a pipeline stage with its defaults
// filled in (Defaults). It is stored with the deployment, so a rollback redeploys an
// artifact with the settings it had.
type Spec struct {
	Environment string `json:"environment"`
	Strategy    string `json:"strategy"` // default rolling
	// Replicas of the service. Default 1.
	Replicas int `json:"replicas"`
	// Port the environment listens on (127.0.0.1). 0: a free port, picked on the first
	// deployment and kept.
	Port int `json:"port,omitempty"`
	// Args and Env of every replica; PORT is set by paved.
	Args []string          `json:"args,omitempty"`
	Env  map[string]string `json:"env,omitempty"`
	// Probes; default readiness: the port accepts connections.
	Startup   *local.Probe `json:"startup,omitempty"`
	Readiness *local.Probe `json:"readiness,omitempty"`
	Liveness  *local.Probe `json:"liveness,omitempty"`
	// ReadinessTimeout: a new replica not ready within it fails the deployment. Default 120s.
	ReadinessTimeout time.Duration `json:"readiness_timeout"`
	// Drain is how long a replica taken out of traffic may finish its requests. Default 30s.
	Drain time.Duration `json:"drain"`

	// Rolling: replicas started above Replicas at once, and replicas that may be missing,
	// as a count or a percentage of Replicas (rounded up for surge, down for unavailable,
	// as Kubernetes does). Defaults 25% and 0.
	MaxSurge       string `json:"max_surge"`
	MaxUnavailable string `json:"max_unavailable"`

	// Canary: traffic weights in percent, increasing, the last 100. Default 5, 25, 50, 100.
	Steps []int `json:"steps,omitempty"`
	// Pause after a step's analysis passed, before the next step. Default 0.
	Pause time.Duration `json:"pause,omitempty"`

	// Blue-green: the preview port green is reachable on before the switch (0: a free
	// port), and how long blue stays warm after it. Default 30m.
	PreviewPort int           `json:"preview_port,omitempty"`
	KeepWarm    time.Duration `json:"keep_warm"`

	Analysis Analysis `json:"analysis"`
	// Smoke checks run against green's preview (blue-green) and against the environment
	// after every deployment.
	Smoke []Smoke `json:"smoke,omitempty"`
	// SLOWindow: after the deployment reached its target, watch it this long; errors above
	// Analysis.MaxErrorRate or a restart roll it back. Default 0: no window.
	SLOWindow time.Duration `json:"slo_window,omitempty"`

	// Target is where the service runs: local (default: paved's own processes behind its
	// proxy) or kubernetes (Deployments and Services in Kubernetes' namespace).
	Target     string      `json:"target,omitempty"`
	Kubernetes *Kubernetes `json:"kubernetes,omitempty"`
}

// Analysis says how a canary is judged against its baseline, and a deployment in its SLO
// window. Field names follow Argo Rollouts' AnalysisTemplate.
type Analysis struct {
	// Interval between measurements. Default 10s.
	Interval time.Duration `json:"interval"`
	// Count of passing measurements a step needs. Default 3.
	Count int `json:"count"`
	// FailureLimit: failed measurements tolerated per step; one more fails it. Default 0.
	FailureLimit int `json:"failure_limit"`
	// ConsecutiveErrorLimit: metric-source errors in a row tolerated; one more fails the
	// step. Default 4.
	ConsecutiveErrorLimit int `json:"consecutive_error_limit"`
	// MinSamples: requests the canary and the baseline each need in a measurement for it
	// to count; fewer makes it inconclusive and pauses the deployment. Default 50.
	MinSamples int `json:"min_samples"`
	// InconclusiveTimeout: how long a deployment stays paused for lack of traffic before it
	// is rolled back (never promoted). Default 15m.
	InconclusiveTimeout time.Duration `json:"inconclusive_timeout"`
	// MaxErrorRate: the canary's 5xx rate fails above it and above the baseline's rate plus
	// it. Default 0.001 (0.1%).
	MaxErrorRate float64 `json:"max_error_rate"`
	// MaxP99Increase: the canary's P99 latency fails above the baseline's times 1+it and
	// more than P99Slack above it. Defaults 0.10 and 20ms (at a few ms, 10% is scheduler
	// noise). A P99 is judged only over windows of 100 requests or more on both sides.
	MaxP99Increase float64       `json:"max_p99_increase"`
	P99Slack       time.Duration `json:"p99_slack"`
	// MaxRestarts of canary replicas during the step. Default 0.
	MaxRestarts int `json:"max_restarts"`
	// MemoryLimit per replica in bytes; the canary fails above 90% of it. 0: not checked.
	MemoryLimit int64 `json:"memory_limit,omitempty"`
	// Source of request metrics: "proxy" (default) or "prometheus".
	Source     string      `json:"source"`
	Prometheus *Prometheus `json:"prometheus,omitempty"`
}

// Smoke is an HTTP check: GET Path must answer Status (default 200) with Body in it.
type Smoke struct {
	Path   string `json:"path"`
	Status int    `json:"status,omitempty"`
	Body   string `json:"body,omitempty"`
}

// Defaults fills in what s leaves out and checks it; the error says which setting is wrong.
func (s Spec) Defaults() (Spec, error) {
	if s.Strategy == "" {
		s.Strategy = Rolling
	}
	if !slices.Contains([]string{Rolling, BlueGreen, Canary}, s.Strategy) {
		return s, fmt.Errorf("deploy: strategy %q: use rolling, blue-green or canary", s.Strategy)
	}
	if s.Environment == "" {
		return s, fmt.Errorf("deploy: no environment")
	}
	if s.Replicas == 0 {
		s.Replicas = 1
	}
	if s.Replicas < 0 || s.Replicas > 100 {
		return s, fmt.Errorf("deploy: replicas %d: use 1 to 100", s.Replicas)
	}
	if s.ReadinessTimeout <= 0 {
		s.ReadinessTimeout = 120 * time.Second
	}
	if s.Drain <= 0 {
		s.Drain = 30 * time.Second
	}
	if s.MaxSurge == "" {
		s.MaxSurge = "25%"
	}
	if s.MaxUnavailable == "" {
		s.MaxUnavailable = "0"
	}
	if _, err := scaled(s.MaxSurge, s.Replicas, true); err != nil {
		return s, fmt.Errorf("deploy: max_surge: %w", err)
	}
	if _, err := scaled(s.MaxUnavailable, s.Replicas, false); err != nil {
		return s, fmt.Errorf("deploy: max_unavailable: %w", err)
	}
	if len(s.Steps) == 0 {
		s.Steps = []int{5, 25, 50, 100}
	}
	for i, w := range s.Steps {
		if w <= 0 || w > 100 || (i > 0 && w <= s.Steps[i-1]) {
			return s, fmt.Errorf("deploy: steps %v: weights must increase within 1..100", s.Steps)
		}
	}
	if s.Steps[len(s.Steps)-1] != 100 {
		s.Steps = append(slices.Clone(s.Steps), 100)
	}
	if s.KeepWarm <= 0 {
		s.KeepWarm = 30 * time.Minute
	}
	a := &s.Analysis
	if a.Interval <= 0 {
		a.Interval = 10 * time.Second
	}
	if a.Count <= 0 {
		a.Count = 3
	}
	if a.ConsecutiveErrorLimit <= 0 {
		a.ConsecutiveErrorLimit = 4
	}
	if a.MinSamples <= 0 {
		a.MinSamples = 50
	}
	if a.InconclusiveTimeout <= 0 {
		a.InconclusiveTimeout = 15 * time.Minute
	}
	if a.MaxErrorRate <= 0 {
		a.MaxErrorRate = 0.001
	}
	if a.MaxP99Increase <= 0 {
		a.MaxP99Increase = 0.10
	}
	if a.P99Slack <= 0 {
		a.P99Slack = 20 * time.Millisecond
	}
	if a.Source == "" {
		a.Source = "proxy"
	}
	switch a.Source {
	case "proxy":
	case "prometheus":
		if a.Prometheus == nil || a.Prometheus.URL == "" {
			return s, fmt.Errorf("deploy: analysis.source prometheus needs analysis.prometheus.url")
		}
	default:
		return s, fmt.Errorf("deploy: analysis.source %q: use proxy or prometheus", a.Source)
	}
	if err := s.defaultsTarget(); err != nil {
		return s, err
	}
	for i := range s.Smoke {
		if s.Smoke[i].Status == 0 {
			s.Smoke[i].Status = 200
		}
		if !strings.HasPrefix(s.Smoke[i].Path, "/") {
			return s, fmt.Errorf("deploy: smoke %d: path %q must start with /", i+1, s.Smoke[i].Path)
		}
	}
	return s, nil
}

// scaled reads "25%" or "2" against n replicas.
func scaled(v string, n int, up bool) (int, error) {
	if p, ok := strings.CutSuffix(v, "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || f < 0 || f > 100 {
			return 0, fmt.Errorf("%q is not a percentage from 0%% to 100%%", v)
		}
		x := f * float64(n) / 100
		if up {
			return int(math.Ceil(x)), nil
		}
		return int(math.Floor(x)), nil
	}
	i, err := strconv.Atoi(v)
	if err != nil || i < 0 {
		return 0, fmt.Errorf("%q is neither a count nor a percentage (e.g. 1 or 25%%)", v)
	}
	return i, nil
}

// Hash is the sha256 of the spec's JSON: the history's config hash.
func (s Spec) Hash() (json.RawMessage, string) {
	b, _ := json.Marshal(s)
	h := sha256.Sum256(b)
	return b, "sha256:" + hex.EncodeToString(h[:])
}

// version is the label of an artifact in metrics and status: its digest, short.
func version(digest string) string {
	v := strings.TrimPrefix(digest, "sha256:")
	if len(v) > 12 {
		v = v[:12]
	}
	return v
}
