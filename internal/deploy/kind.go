package deploy

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/paved/paved/internal/deploy/local"
	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/schedule"
	"github.com/paved/paved/internal/store"
)

// Kind runs deploy: stages in the server (schedule.Kind "deploy") through a Controller.
// Run is safe to repeat: a stage re-run after a restart finds its environment restored to
// the last successful deployment, and deploys again (or finds it already deployed).
type Kind struct {
	C *Controller
}

var _ schedule.Kind = Kind{}

// Run deploys the stage's artifact and reports the deployment as the stage's result.
func (k Kind) Run(ctx context.Context, job schedule.KindJob, rec schedule.KindRecorder) (schedule.KindResult, error) {
	spec, err := SpecFrom(job.Def.Deploy)
	if err != nil {
		return schedule.KindResult{Failed: true, Reason: err.Error()}, nil
	}
	digest, err := pickArtifact(job.Def.Deploy.Artifact, job.ArtifactsIn)
	if err != nil {
		rec.Log(err.Error())
		return schedule.KindResult{Failed: true, Reason: err.Error()}, nil
	}
	req := Request{Spec: spec, Artifact: digest, RunID: job.RunID, Stage: job.Stage}
	if info := job.Info; info != nil {
		req.Repo, req.SHA = info.Repo, info.SHA
		req.TriggeredBy = triggeredBy(info.Trigger)
	}
	d, err := k.C.Deploy(ctx, req, rec)
	if err != nil {
		if errors.Is(err, ErrBadRequest) {
			return schedule.KindResult{Failed: true, Reason: err.Error()}, nil
		}
		return schedule.KindResult{}, err
	}
	switch d.Outcome {
	case store.DeploymentSucceeded:
		return schedule.KindResult{}, nil
	case store.DeploymentRolledBack:
		return schedule.KindResult{Failed: true, Reason: "rolled back: " + d.Reason}, nil
	}
	return schedule.KindResult{Failed: true, Reason: "deployment failed: " + d.Reason}, nil
}

func triggeredBy(t run.Trigger) string {
	who := t.Author
	if who == "" {
		who = t.AuthorName
	}
	if who == "" {
		return t.Kind
	}
	return t.Kind + " by " + who
}

// pickArtifact finds the service binary among the upstream artifacts: the one at want, or
// without want the only executable file.
func pickArtifact(want string, in []execute.Artifact) (string, error) {
	var exec []string
	byPath := map[string]string{}
	for _, a := range in {
		if !a.Mode.IsRegular() || a.Digest == "" {
			continue
		}
		byPath[a.Path] = a.Digest
		if a.Mode.Perm()&0o111 != 0 {
			exec = append(exec, a.Path)
		}
	}
	if want != "" {
		if d, ok := byPath[path.Clean(want)]; ok {
			return d, nil
		}
		return "", fmt.Errorf("deploy: artifact %q is not among the artifacts of the stages before this one (%s); add it to the build stage's artifacts: and this stage's needs:",
			want, listOr(keys(byPath), "none"))
	}
	switch len(exec) {
	case 1:
		return byPath[exec[0]], nil
	case 0:
		return "", fmt.Errorf("deploy: no executable among the artifacts of the stages before this one (%s); build the service in a stage this one needs, with artifacts: [PATH]",
			listOr(keys(byPath), "none"))
	}
	return "", fmt.Errorf("deploy: %d executables among the upstream artifacts (%s); say which with deploy.artifact", len(exec), strings.Join(exec, ", "))
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func listOr(l []string, none string) string {
	if len(l) == 0 {
		return none
	}
	if len(l) > 5 {
		l = append(l[:5:5], "...")
	}
	return strings.Join(l, ", ")
}

// SpecFrom turns a stage's deploy: map into a Spec with defaults. The compiler validated
// the values; an error here is a pipeline stored by an older paved.
func SpecFrom(p *pipeline.Deploy) (Spec, error) {
	if p == nil {
		return Spec{}, errors.New("deploy: the stage has no deploy: map")
	}
	var errs []error
	dur := func(s, what string) time.Duration {
		if s == "" {
			return 0
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
		return d
	}
	probe := func(p *pipeline.DeployProbe, what string) *local.Probe {
		if p == nil {
			return nil
		}
		return &local.Probe{Path: p.Path, InitialDelay: dur(p.InitialDelay, what+".initial_delay"), Period: dur(p.Period, what+".period"),
			Timeout: dur(p.Timeout, what+".timeout"), SuccessThreshold: p.SuccessThreshold, FailureThreshold: p.FailureThreshold}
	}
	s := Spec{
		Environment: p.Environment, Strategy: p.Strategy, Replicas: p.Replicas, Port: p.Port, Args: p.Args, Env: p.Env,
		Startup: probe(p.Startup, "startup"), Readiness: probe(p.Readiness, "readiness"), Liveness: probe(p.Liveness, "liveness"),
		ReadinessTimeout: dur(p.ReadinessTimeout, "readiness_timeout"), Drain: dur(p.Drain, "drain"),
		MaxSurge: p.MaxSurge, MaxUnavailable: p.MaxUnavailable, Steps: p.Steps, Pause: dur(p.Pause, "pause"),
		PreviewPort: p.PreviewPort, KeepWarm: dur(p.KeepWarm, "keep_warm"), SLOWindow: dur(p.SLOWindow, "slo_window"),
	}
	s.Target = p.Target
	if k := p.Kubernetes; k != nil {
		s.Kubernetes = &Kubernetes{Context: k.Context, Namespace: k.Namespace, Kubeconfig: k.Kubeconfig, Image: k.Image, ContainerPort: k.ContainerPort, HTTPRoute: k.HTTPRoute}
	}
	for _, sm := range p.Smoke {
		s.Smoke = append(s.Smoke, Smoke{Path: sm.Path, Status: sm.Status, Body: sm.Body})
	}
	if a := p.Analysis; a != nil {
		s.Analysis = Analysis{
			Interval: dur(a.Interval, "analysis.interval"), Count: a.Count, FailureLimit: a.FailureLimit,
			ConsecutiveErrorLimit: a.ConsecutiveErrorLimit, MinSamples: a.MinSamples,
			InconclusiveTimeout: dur(a.InconclusiveTimeout, "analysis.inconclusive_timeout"),
			MaxErrorRate:        a.MaxErrorRate, MaxP99Increase: a.MaxP99Increase, P99Slack: dur(a.P99Slack, "analysis.p99_slack"),
			MaxRestarts: a.MaxRestarts, MemoryLimit: a.MemoryLimit, Source: a.Source,
		}
		if a.Prometheus != nil {
			s.Analysis.Prometheus = &Prometheus{URL: a.Prometheus["url"], Requests: a.Prometheus["requests"],
				ErrorRate: a.Prometheus["error_rate"], P99: a.Prometheus["p99"]}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return s, fmt.Errorf("deploy: %w", err)
	}
	return s.Defaults()
}
