package pipeline

import (
	"math"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// deployOption reads one deploy: key beyond environment and strategy; false for a key it
// does not know.
func (c *compiler) deployOption(dp *Deploy, f field) bool {
	what := "deploy." + f.name
	switch f.name {
	case "artifact":
		if s, ok := c.str(f.val, what); ok {
			if path.IsAbs(s) || strings.HasPrefix(path.Clean(s), "..") {
				c.errorf(f.val, "%s: %q must be a path relative to the workspace, as in the build stage's artifacts:", what, s)
			}
			dp.Artifact = path.Clean(s)
		}
	case "replicas":
		dp.Replicas, _ = c.integer(f.val, what, 1, 100)
	case "port":
		dp.Port, _ = c.integer(f.val, what, 1, 65535)
	case "preview_port":
		dp.PreviewPort, _ = c.integer(f.val, what, 1, 65535)
	case "args":
		dp.Args = c.strs(f.val, what)
	case "env":
		fs, ok := c.fields(f.val, what, nil)
		if !ok {
			break
		}
		dp.Env = map[string]string{}
		for _, e := range fs {
			if !envNameRE.MatchString(e.name) || e.name == "PORT" {
				c.errorf(e.key, "%s: %q is not a variable name paved lets you set (letters, digits and _; PORT is set by paved)", what, e.name)
				continue
			}
			dp.Env[e.name], _ = c.scalarText(e.val, what+"."+e.name)
		}
	case "startup", "readiness", "liveness":
		p := c.deployProbe(f.val, what)
		switch f.name {
		case "startup":
			dp.Startup = p
		case "readiness":
			dp.Readiness = p
		default:
			dp.Liveness = p
		}
	case "readiness_timeout", "drain", "pause", "keep_warm", "slo_window":
		d := c.deployDuration(f.val, what)
		switch f.name {
		case "readiness_timeout":
			dp.ReadinessTimeout = d
		case "drain":
			dp.Drain = d
		case "pause":
			dp.Pause = d
		case "keep_warm":
			dp.KeepWarm = d
		default:
			dp.SLOWindow = d
		}
	case "max_surge", "max_unavailable":
		s, ok := c.scalarText(f.val, what)
		if ok && !validScale(s) {
			c.errorf(f.val, "%s: %q is neither a count nor a percentage (e.g. 1 or 25%%)", what, s)
		}
		if f.name == "max_surge" {
			dp.MaxSurge = s
		} else {
			dp.MaxUnavailable = s
		}
	case "steps":
		for _, it := range items(f.val) {
			w, ok := c.integer(it, what, 1, 100)
			if !ok {
				continue
			}
			if n := len(dp.Steps); n > 0 && w <= dp.Steps[n-1] {
				c.errorf(it, "%s: %d after %d: canary weights must increase (e.g. [5, 25, 50, 100])", what, w, dp.Steps[n-1])
				continue
			}
			dp.Steps = append(dp.Steps, w)
		}
	case "analysis":
		dp.Analysis = c.deployAnalysis(f.val)
	case "target":
		dp.Target, _ = c.enum(f.val, what, targets)
	case "kubernetes":
		dp.Kubernetes = c.deployKubernetes(f.val)
	case "smoke":
		for _, it := range items(f.val) {
			fs, ok := c.fields(it, what, nil)
			if !ok {
				continue
			}
			var s DeploySmoke
			for _, sf := range fs {
				switch sf.name {
				case "path":
					if p, ok := c.str(sf.val, "deploy.smoke.path"); ok {
						if !strings.HasPrefix(p, "/") {
							c.errorf(sf.val, "deploy.smoke.path: %q must start with / (it is requested from the environment)", p)
						}
						s.Path = p
					}
				case "status":
					s.Status, _ = c.integer(sf.val, "deploy.smoke.status", 100, 599)
				case "body":
					s.Body, _ = c.str(sf.val, "deploy.smoke.body")
				default:
					c.unknownKey(sf, "in deploy.smoke", deploySmokeKeys)
				}
			}
			if s.Path == "" && !c.has(fs, "path") {
				c.errorf(it, "deploy.smoke: needs a path (e.g. {path: /healthz, status: 200})")
				continue
			}
			dp.Smoke = append(dp.Smoke, s)
		}
	default:
		return false
	}
	return true
}

func validScale(s string) bool {
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		return err == nil && f >= 0 && f <= 100
	}
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0
}

// deployDuration reads a Go duration from 1ms to 24h, kept as written.
func (c *compiler) deployDuration(n *yaml.Node, what string) string {
	s, ok := c.str(n, what)
	if !ok {
		return ""
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		c.errorf(n, "%s: %q is not a duration (use Go durations like 500ms, 30s, 10m)", what, s)
	case d < time.Millisecond || d > maxTimeout:
		c.errorf(n, "%s: %s is out of range (from 1ms to 24h)", what, s)
	default:
		return s
	}
	return ""
}

func (c *compiler) deployProbe(n *yaml.Node, what string) *DeployProbe {
	fs, ok := c.fields(n, what, nil)
	if !ok {
		return nil
	}
	p := &DeployProbe{}
	for _, f := range fs {
		w := what + "." + f.name
		switch f.name {
		case "path":
			if s, ok := c.str(f.val, w); ok {
				if !strings.HasPrefix(s, "/") {
					c.errorf(f.val, "%s: %q must start with /", w, s)
				}
				p.Path = s
			}
		case "initial_delay":
			p.InitialDelay = c.deployDuration(f.val, w)
		case "period":
			p.Period = c.deployDuration(f.val, w)
		case "timeout":
			p.Timeout = c.deployDuration(f.val, w)
		case "success_threshold":
			p.SuccessThreshold, _ = c.integer(f.val, w, 1, 100)
		case "failure_threshold":
			p.FailureThreshold, _ = c.integer(f.val, w, 1, 100)
		default:
			c.unknownKey(f, "in "+what, deployProbeKeys)
		}
	}
	return p
}

func (c *compiler) deployAnalysis(n *yaml.Node) *DeployAnalysis {
	fs, ok := c.fields(n, "deploy.analysis", nil)
	if !ok {
		return nil
	}
	a := &DeployAnalysis{}
	for _, f := range fs {
		w := "deploy.analysis." + f.name
		switch f.name {
		case "interval":
			a.Interval = c.deployDuration(f.val, w)
		case "inconclusive_timeout":
			a.InconclusiveTimeout = c.deployDuration(f.val, w)
		case "p99_slack":
			a.P99Slack = c.deployDuration(f.val, w)
		case "count":
			a.Count, _ = c.integer(f.val, w, 1, 1000)
		case "failure_limit":
			a.FailureLimit, _ = c.integer(f.val, w, 0, 1000)
		case "consecutive_error_limit":
			a.ConsecutiveErrorLimit, _ = c.integer(f.val, w, 0, 1000)
		case "min_samples":
			a.MinSamples, _ = c.integer(f.val, w, 1, math.MaxInt32)
		case "max_restarts":
			a.MaxRestarts, _ = c.integer(f.val, w, 0, 1000)
		case "max_error_rate":
			a.MaxErrorRate = c.fraction(f.val, w)
		case "max_p99_increase":
			a.MaxP99Increase = c.fraction(f.val, w)
		case "memory_limit":
			a.MemoryLimit = c.bytes(f.val, w)
		case "source":
			a.Source, _ = c.enum(f.val, w, []string{"proxy", "prometheus"})
		case "prometheus":
			pfs, ok := c.fields(f.val, w, nil)
			if !ok {
				break
			}
			a.Prometheus = map[string]string{}
			for _, pf := range pfs {
				if !contains(deployPrometheusKeys, pf.name) {
					c.unknownKey(pf, "in "+w, deployPrometheusKeys)
					continue
				}
				a.Prometheus[pf.name], _ = c.str(pf.val, w+"."+pf.name)
			}
		default:
			c.unknownKey(f, "in deploy.analysis", deployAnalysisKeys)
		}
	}
	if a.Source == "prometheus" && a.Prometheus["url"] == "" {
		c.errorf(n, "deploy.analysis: source prometheus needs prometheus: {url: http://HOST:9090}")
	}
	return a
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// fraction reads 0.001 or 0.1% as a fraction from 0 to 1.
func (c *compiler) fraction(n *yaml.Node, what string) float64 {
	s, ok := c.scalarText(n, what)
	if !ok {
		return 0
	}
	v, pct := strings.CutSuffix(strings.TrimSpace(s), "%")
	f, err := strconv.ParseFloat(v, 64)
	if pct {
		f /= 100
	}
	if err != nil || f < 0 || f > 1 || math.IsNaN(f) {
		c.errorf(n, "%s: %q is not a fraction from 0 to 1 or a percentage (e.g. 0.001 or 0.1%%)", what, s)
		return 0
	}
	return f
}

// bytes reads a size: 268435456, 256Mi, 1Gi, 512M.
func (c *compiler) bytes(n *yaml.Node, what string) int64 {
	s, ok := c.scalarText(n, what)
	if !ok {
		return 0
	}
	units := []struct {
		suffix string
		mult   int64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"", 1}}
	for _, u := range units {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			i, err := strconv.ParseInt(v, 10, 64)
			if err == nil && i > 0 && i <= math.MaxInt64/u.mult {
				return i * u.mult
			}
			break
		}
	}
	c.errorf(n, "%s: %q is not a size (e.g. 256Mi, 1Gi or a number of bytes)", what, s)
	return 0
}

// quantityRE is Kubernetes' quantity syntax as people write it: a number with an optional
// SI or binary suffix.
var quantityRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$`)

// resources reads a stage's resources: map.
func (c *compiler) resources(n *yaml.Node, where string) *Resources {
	fs, ok := c.fields(n, "resources", nil)
	if !ok {
		return nil
	}
	r := &Resources{}
	for _, f := range fs {
		what := "resources." + f.name
		var dst *string
		switch f.name {
		case "cpu":
			dst = &r.CPU
		case "memory":
			dst = &r.Memory
		case "cpu_limit":
			dst = &r.CPULimit
		case "memory_limit":
			dst = &r.MemoryLimit
		default:
			c.unknownKey(f, "in "+where+".resources", resourcesKeys)
			continue
		}
		s, ok := c.scalarText(f.val, what)
		if !ok {
			continue
		}
		if !quantityRE.MatchString(s) {
			c.errorf(f.val, "%s: %q is not a quantity (write 500m or 2 for CPU, 512Mi or 2Gi for memory)", what, s)
			continue
		}
		*dst = s
	}
	return r
}

// dnsSubdomainRE is a Kubernetes object name (RFC 1123 subdomain), as an HTTPRoute's.
var dnsSubdomainRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// deployKubernetes reads deploy.kubernetes: where a kubernetes target deploys.
func (c *compiler) deployKubernetes(n *yaml.Node) *DeployKubernetes {
	fs, ok := c.fields(n, "deploy.kubernetes", nil)
	if !ok {
		return nil
	}
	k := &DeployKubernetes{}
	for _, f := range fs {
		what := "deploy.kubernetes." + f.name
		switch f.name {
		case "context":
			k.Context, _ = c.str(f.val, what)
		case "namespace":
			k.Namespace, _ = c.str(f.val, what)
		case "kubeconfig":
			k.Kubeconfig, _ = c.str(f.val, what)
		case "image":
			k.Image, _ = c.str(f.val, what)
		case "container_port":
			k.ContainerPort, _ = c.integer(f.val, what, 1, 65535)
		case "http_route":
			if r, ok := c.str(f.val, what); ok {
				if !dnsSubdomainRE.MatchString(r) || len(r) > 253 {
					c.errorf(f.val, "%s: %q is not a Kubernetes object name (lowercase letters, digits, '-' and '.')", what, r)
				} else {
					k.HTTPRoute = r
				}
			}
		default:
			c.unknownKey(f, "in deploy.kubernetes", deployKubernetesKeys)
		}
	}
	return k
}
