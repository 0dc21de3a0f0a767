package deploy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/paved/paved/internal/deploy/local"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

func (d *deployment) source() Source {
	if d.spec.Analysis.Source == "prometheus" && d.spec.Analysis.Prometheus != nil {
		return newPromSource(*d.spec.Analysis.Prometheus, d.spec.Environment, d.c.cfg.Now)
	}
	return newProxySource(d.env.proxy)
}

func restartsOf(reps []*local.Replica) int {
	n := 0
	for _, r := range reps {
		n += r.Restarts()
	}
	return n
}

func maxRSS(reps []*local.Replica) int64 {
	var m int64
	for _, r := range reps {
		m = max(m, r.Status().RSSBytes)
	}
	return m
}

func concat(lists ...[]*local.Replica) []*local.Replica {
	var out []*local.Replica
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// canary shifts traffic step by step to the new release, with a baseline of the old one at
// the same share, and judges each step; a failing judgement cuts the canary off at once.
func (d *deployment) canary(ctx context.Context) (string, string, error) {
	spec, old := d.spec, d.old
	canaryReps, err := d.c.startReplicas(ctx, d.env, d.new, 1)
	if err != nil {
		if ctx.Err() != nil {
			return "", "", ctx.Err()
		}
		return store.DeploymentFailed, "canary " + err.Error(), nil
	}
	d.track(canaryReps)
	baseRel := &release{rec: old.rec, spec: old.spec, binary: old.binary}
	baseReps, err := d.c.startReplicas(ctx, d.env, baseRel, 1)
	if err != nil {
		if ctx.Err() != nil {
			return "", "", ctx.Err()
		}
		stopReplicas(canaryReps, 0)
		return store.DeploymentFailed, "baseline " + err.Error(), nil
	}
	d.track(baseReps)
	an := &analyzer{cfg: spec.Analysis, src: d.source(), now: d.c.cfg.Now,
		restarts: func() int { return restartsOf(canaryReps) },
		rss:      func() int64 { return maxRSS(canaryReps) },
	}
	var weights map[string]int
	an.report = func(a run.Analysis, paused bool) error {
		phase := "progressing"
		if paused {
			phase = "paused"
			d.log("step %d: analysis inconclusive, paused: %s", a.Step, a.Reason)
		} else {
			d.log("step %d: measurement %d %s %s", a.Step, a.Measurement, a.Outcome, metricsText(a.Metrics))
		}
		return d.event(run.AnalysisRun, func(x *run.Deployment) {
			x.Step, x.Steps, x.Weights, x.Phase, x.Analysis = a.Step, len(spec.Steps), weights, phase, &a
		})
	}
	cutOff := func(step int, deciding run.Analysis) (string, string, error) {
		t0 := time.Now()
		d.env.proxy.SetPools([]local.Pool{{Name: trackStable, Weight: 100, Replicas: old.replicas}})
		cut := time.Since(t0)
		reason := fmt.Sprintf("analysis failed at step %d (%d%%): %s", step, spec.Steps[step-1], deciding.Reason)
		d.log("rolling back: %s; canary traffic 0%% after %s", reason, cut)
		err := d.event(run.RollbackStarted, func(x *run.Deployment) {
			x.Step, x.Steps, x.Phase, x.Analysis, x.Reason = step, len(spec.Steps), "rolling_back", &deciding, reason
			x.Weights = map[string]int{trackStable: 100, trackCanary: 0, trackBaseline: 0}
			x.RollbackMS = float64(cut.Microseconds()) / 1000
		})
		stopReplicas(concat(canaryReps, baseReps), spec.Drain)
		d.mu.Lock()
		d.started = nil
		d.mu.Unlock()
		return store.DeploymentRolledBack, reason, err
	}
	// scale grows a pool to its share of the replicas (at least one), so that no replica
	// takes more than its part of the traffic.
	scale := func(reps []*local.Replica, rel *release, share int) ([]*local.Replica, error) {
		want := min(spec.Replicas, max(1, (spec.Replicas*share+99)/100))
		if len(reps) >= want {
			return reps, nil
		}
		more, err := d.c.startReplicas(ctx, d.env, rel, want-len(reps))
		if err != nil {
			return reps, err
		}
		d.track(more)
		return concat(reps, more), nil
	}
	for i, w := range spec.Steps {
		if w >= 100 {
			break
		}
		b := min(w, 100-w)
		var err error
		if canaryReps, err = scale(canaryReps, d.new, w); err == nil {
			baseReps, err = scale(baseReps, baseRel, b)
		}
		if err != nil {
			if ctx.Err() != nil {
				return "", "", ctx.Err()
			}
			return cutOff(i+1, run.Analysis{Step: i + 1, Outcome: run.AnalysisFail, Reason: "scaling to the step's share: " + err.Error()})
		}
		weights = map[string]int{trackStable: 100 - w - b, trackCanary: w, trackBaseline: b}
		d.env.proxy.SetPools([]local.Pool{
			{Name: trackStable, Weight: 100 - w - b, Replicas: old.replicas},
			{Name: trackCanary, Weight: w, Replicas: canaryReps},
			{Name: trackBaseline, Weight: b, Replicas: baseReps},
		})
		d.log("step %d/%d: canary %d%% on %s, baseline %d%% on %s, stable %d%%", i+1, len(spec.Steps), w, replicas(len(canaryReps)), b, replicas(len(baseReps)), 100-w-b)
		if err := d.event(run.DeploymentStepAdvanced, func(x *run.Deployment) {
			x.Step, x.Steps, x.Weights, x.Phase = i+1, len(spec.Steps), weights, "progressing"
		}); err != nil {
			return "", "", err
		}
		pass, deciding, err := an.step(ctx, i+1)
		if err != nil {
			return "", "", err
		}
		if !pass {
			return cutOff(i+1, deciding)
		}
		d.log("step %d: analysis passed %s", i+1, metricsText(deciding.Metrics))
		if err := d.event(run.AnalysisRun, func(x *run.Deployment) {
			x.Step, x.Steps, x.Weights, x.Phase, x.Analysis = i+1, len(spec.Steps), weights, "progressing", &deciding
		}); err != nil {
			return "", "", err
		}
		if spec.Pause > 0 {
			select {
			case <-time.After(spec.Pause):
			case <-ctx.Done():
				return "", "", ctx.Err()
			}
		}
	}
	// Promote: the canary becomes the stable release at full size.
	more, err := d.c.startReplicas(ctx, d.env, d.new, spec.Replicas-len(canaryReps))
	if err != nil {
		if ctx.Err() != nil {
			return "", "", ctx.Err()
		}
		return cutOff(len(spec.Steps), run.Analysis{Step: len(spec.Steps), Outcome: run.AnalysisFail, Reason: err.Error()})
	}
	d.track(more)
	d.new.replicas = concat(canaryReps, more)
	d.env.proxy.SetPools([]local.Pool{{Name: trackStable, Weight: 100, Replicas: d.new.replicas}})
	d.log("step %d/%d: %s at 100%%", len(spec.Steps), len(spec.Steps), d.base.Version)
	if err := d.event(run.DeploymentStepAdvanced, func(x *run.Deployment) {
		x.Step, x.Steps, x.Weights, x.Phase = len(spec.Steps), len(spec.Steps), map[string]int{trackStable: 100}, "verifying"
	}); err != nil {
		return "", "", err
	}
	stopReplicas(baseReps, spec.Drain)
	why, err := d.verify(ctx, d.new)
	if err != nil {
		return "", "", err
	}
	if why != "" {
		return d.switchBack(why, d.new.replicas)
	}
	stopReplicas(old.replicas, spec.Drain)
	d.promoteTo(d.new)
	return store.DeploymentSucceeded, "", nil
}

// switchBack routes everything to the old release, whose replicas still run, and stops
// the new ones.
func (d *deployment) switchBack(why string, newReps []*local.Replica) (string, string, error) {
	t0 := time.Now()
	d.env.proxy.SetPools([]local.Pool{{Name: trackStable, Weight: 100, Replicas: d.old.replicas}})
	cut := time.Since(t0)
	reason := "verification failed: " + why
	d.log("rolling back: %s", reason)
	err := d.event(run.RollbackStarted, func(x *run.Deployment) {
		x.Phase, x.Reason, x.Weights, x.RollbackMS = "rolling_back", reason, map[string]int{trackStable: 100}, float64(cut.Microseconds())/1000
	})
	stopReplicas(newReps, d.spec.Drain)
	d.mu.Lock()
	d.started = nil
	d.mu.Unlock()
	return store.DeploymentRolledBack, reason, err
}

// blueGreen starts green beside blue, smoke-tests it on a preview port, switches all
// traffic in one swap, and keeps blue warm for an instant way back.
func (d *deployment) blueGreen(ctx context.Context) (string, string, error) {
	spec := d.spec
	if warm := d.takeWarm(); warm != nil {
		return d.switchToWarm(ctx, warm)
	}
	green, err := d.c.startReplicas(ctx, d.env, d.new, spec.Replicas)
	if err != nil {
		if ctx.Err() != nil {
			return "", "", ctx.Err()
		}
		return store.DeploymentFailed, "green " + err.Error(), nil
	}
	d.track(green)
	d.new.replicas = green
	preview, err := local.NewProxy(fmt.Sprintf("127.0.0.1:%d", spec.PreviewPort), d.c.log.With("environment", spec.Environment+"-preview"))
	if err != nil {
		stopReplicas(green, 0)
		return store.DeploymentFailed, "preview port: " + err.Error(), nil
	}
	defer preview.Close()
	preview.SetPools([]local.Pool{{Name: "green", Weight: 100, Replicas: green}})
	d.log("green (%s) ready on the preview %s", d.base.Version, preview.URL())
	if err := d.event(run.DeploymentStepAdvanced, func(x *run.Deployment) {
		x.Step, x.Steps, x.Weights, x.Phase = 1, 2, map[string]int{"blue": 100, "green": 0}, "progressing"
	}); err != nil {
		return "", "", err
	}
	if why := smoke(ctx, preview.URL(), spec.Smoke); why != "" {
		stopReplicas(green, 0)
		d.mu.Lock()
		d.started = nil
		d.mu.Unlock()
		return store.DeploymentFailed, "smoke test on the preview failed: " + why, nil
	}
	d.env.proxy.SetPools([]local.Pool{{Name: trackStable, Weight: 100, Replicas: green}})
	d.log("switched %s to green (%s)", spec.Environment, d.base.Version)
	if err := d.event(run.DeploymentStepAdvanced, func(x *run.Deployment) {
		x.Step, x.Steps, x.Weights, x.Phase = 2, 2, map[string]int{"blue": 0, "green": 100}, "verifying"
	}); err != nil {
		return "", "", err
	}
	why, err := d.verify(ctx, d.new)
	if err != nil {
		return "", "", err
	}
	if why != "" {
		return d.switchBack(why, green)
	}
	d.keepWarm(d.old)
	d.promoteTo(d.new)
	return store.DeploymentSucceeded, "", nil
}

// takeWarm returns the release blue-green keeps warm when it is the artifact being
// deployed and all its replicas are ready, and stops keeping it.
func (d *deployment) takeWarm() *release {
	env := d.env
	env.mu.Lock()
	defer env.mu.Unlock()
	w := env.warm
	if w == nil || w.rec.Artifact != d.new.rec.Artifact {
		return nil
	}
	for _, r := range w.replicas {
		if !r.Ready() {
			return nil
		}
	}
	if env.warmStop != nil {
		env.warmStop.Stop()
	}
	env.warm, env.warmStop = nil, nil
	return w
}

// switchToWarm is a rollback within keep_warm: all traffic back to the warm replicas in
// one swap, no process started.
func (d *deployment) switchToWarm(ctx context.Context, warm *release) (string, string, error) {
	d.new.replicas = warm.replicas
	d.env.proxy.SetPools([]local.Pool{{Name: trackStable, Weight: 100, Replicas: warm.replicas}})
	d.log("switched %s back to %s, kept warm", d.spec.Environment, d.base.Version)
	if err := d.event(run.DeploymentStepAdvanced, func(x *run.Deployment) {
		x.Step, x.Steps, x.Weights, x.Phase = 1, 1, map[string]int{"blue": 100, "green": 0}, "verifying"
	}); err != nil {
		return "", "", err
	}
	why, err := d.verify(ctx, d.new)
	if err != nil {
		return "", "", err
	}
	if why != "" {
		return d.switchBack(why, nil)
	}
	d.keepWarm(d.old)
	d.promoteTo(d.new)
	return store.DeploymentSucceeded, "", nil
}

// keepWarm keeps rel's replicas running, out of traffic, for the spec's keep_warm window.
func (d *deployment) keepWarm(rel *release) {
	env := d.env
	env.mu.Lock()
	prev := env.warm
	if env.warmStop != nil {
		env.warmStop.Stop()
	}
	env.warm = rel
	env.warmStop = time.AfterFunc(d.spec.KeepWarm, func() {
		env.mu.Lock()
		if env.warm != rel {
			env.mu.Unlock()
			return
		}
		env.warm, env.warmStop = nil, nil
		env.mu.Unlock()
		stopReplicas(rel.replicas, 0)
	})
	env.mu.Unlock()
	if prev != nil {
		stopReplicas(prev.replicas, 0)
	}
	d.log("blue (%s) kept warm for %s", rel.rec.Version, d.spec.KeepWarm)
}

// rolling replaces the replicas a few at a time: each batch of new ones is ready and in
// traffic before as many old ones are taken out and drained.
func (d *deployment) rolling(ctx context.Context) (string, string, error) {
	spec, old := d.spec, d.old
	n := spec.Replicas
	surge, _ := scaled(spec.MaxSurge, n, true)
	unavail, _ := scaled(spec.MaxUnavailable, n, false)
	if surge == 0 && unavail == 0 {
		surge = 1
	}
	oldLeft := append([]*local.Replica(nil), old.replicas...)
	var newReps []*local.Replica
	set := func() {
		d.env.proxy.SetPools([]local.Pool{{Name: trackStable, Weight: 100, Replicas: concat(oldLeft, newReps)}})
	}
	steps := (n + max(surge, unavail) - 1) / max(surge, unavail)
	step := 0
	for len(newReps) < n {
		k := min(n+surge-len(oldLeft)-len(newReps), n-len(newReps))
		if k <= 0 {
			drop := max(1, min(unavail, len(oldLeft)))
			victims := oldLeft[:drop]
			oldLeft = oldLeft[drop:]
			set()
			stopReplicas(victims, spec.Drain)
			continue
		}
		reps, err := d.c.startReplicas(ctx, d.env, d.new, k)
		if err != nil {
			if ctx.Err() != nil {
				d.rollBack(context.WithoutCancel(ctx), oldLeft, newReps, err.Error())
				return "", "", ctx.Err()
			}
			return d.rollBack(ctx, oldLeft, newReps, "new replicas "+err.Error())
		}
		d.track(reps)
		newReps = append(newReps, reps...)
		drop := min(max(0, len(oldLeft)+len(newReps)-n), len(oldLeft))
		victims := oldLeft[:drop]
		oldLeft = oldLeft[drop:]
		set()
		stopReplicas(victims, spec.Drain)
		step++
		share := 100 * len(newReps) / (len(newReps) + len(oldLeft))
		d.log("batch %d/%d: %d of %d replicas on %s", step, steps, len(newReps), n, d.base.Version)
		if err := d.event(run.DeploymentStepAdvanced, func(x *run.Deployment) {
			x.Step, x.Steps, x.Phase = step, steps, "progressing"
			x.Weights = map[string]int{old.rec.Version: 100 - share, d.base.Version: share}
		}); err != nil {
			return "", "", err
		}
	}
	d.new.replicas = newReps
	why, err := d.verify(ctx, d.new)
	if err != nil {
		d.rollBack(context.WithoutCancel(ctx), nil, newReps, err.Error())
		return "", "", err
	}
	if why != "" {
		return d.rollBack(ctx, nil, newReps, "verification failed: "+why)
	}
	d.promoteTo(d.new)
	return store.DeploymentSucceeded, "", nil
}

// rollBack brings the old release back to full size beside the old replicas still running,
// then takes the new ones out.
func (d *deployment) rollBack(ctx context.Context, oldLeft, newReps []*local.Replica, why string) (string, string, error) {
	spec, old := d.spec, d.old
	d.log("rolling back to %s: %s", old.rec.Version, why)
	err := d.event(run.RollbackStarted, func(x *run.Deployment) { x.Phase, x.Reason = "rolling_back", why })
	more, serr := d.c.startReplicas(ctx, d.env, old, spec.Replicas-len(oldLeft))
	if serr != nil {
		d.log("rollback could not restart %s: %v; %s stays on what runs", old.rec.Version, serr, spec.Environment)
		d.mu.Lock()
		d.started = nil
		d.mu.Unlock()
		return store.DeploymentFailed, why + "; rollback failed: " + serr.Error(), err
	}
	reps := concat(oldLeft, more)
	d.env.proxy.SetPools([]local.Pool{{Name: trackStable, Weight: 100, Replicas: reps}})
	d.env.mu.Lock()
	old.replicas = reps
	d.env.mu.Unlock()
	stopReplicas(newReps, spec.Drain)
	d.mu.Lock()
	d.started = nil
	d.mu.Unlock()
	return store.DeploymentRolledBack, why, err
}

// verify is the post-deployment check: every replica ready, the smoke checks pass through
// the environment's proxy, and the SLO window sees no restart and errors within
// MaxErrorRate. It returns why it failed, or "".
func (d *deployment) verify(ctx context.Context, rel *release) (string, error) {
	for _, r := range rel.replicas {
		if !r.Ready() {
			return fmt.Sprintf("replica %s is %s", r.ID, r.State()), nil
		}
	}
	if why := smoke(ctx, d.env.proxy.URL(), d.spec.Smoke); why != "" {
		return "smoke test: " + why, nil
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	w := d.spec.SLOWindow
	if w <= 0 {
		return "", nil
	}
	src := d.source()
	if err := src.Mark(ctx, trackStable); err != nil {
		return "", err
	}
	r0 := restartsOf(rel.replicas)
	d.log("verifying: SLO window of %s", w)
	select {
	case <-time.After(w):
	case <-ctx.Done():
		return "", ctx.Err()
	}
	s, err := src.Measure(ctx, trackStable)
	if err != nil {
		return "SLO window: metrics: " + err.Error(), nil
	}
	a := d.spec.Analysis
	restarts := restartsOf(rel.replicas) - r0
	m := run.Analysis{Measurement: 1, Outcome: run.AnalysisPass, Metrics: []run.MetricValue{
		{Name: "restarts", Value: float64(restarts), Threshold: float64(a.MaxRestarts), Outcome: passIf(restarts <= a.MaxRestarts)},
		{Name: "requests", Value: float64(s.Requests)},
		{Name: "error_rate", Value: round(s.ErrorRate), Threshold: a.MaxErrorRate, Outcome: passIf(s.ErrorRate <= a.MaxErrorRate)},
		{Name: "p99_latency_ms", Value: ms2(float64(s.P99))},
	}}
	var why string
	switch {
	case restarts > a.MaxRestarts:
		why = fmt.Sprintf("SLO window: %d restarts", restarts)
	case s.ErrorRate > a.MaxErrorRate:
		why = fmt.Sprintf("SLO window: error rate %g > %g over %d requests", round(s.ErrorRate), a.MaxErrorRate, s.Requests)
	case s.Requests == 0:
		m.Reason = "no traffic in the SLO window: only readiness and smoke checks verified it"
	}
	if why != "" {
		m.Outcome, m.Reason = run.AnalysisFail, why
	}
	d.log("SLO window: %s %s", m.Outcome, metricsText(m.Metrics))
	if err := d.event(run.AnalysisRun, func(x *run.Deployment) { x.Phase, x.Analysis = "verifying", &m }); err != nil {
		return "", err
	}
	return why, nil
}

func replicas(n int) string {
	if n == 1 {
		return "1 replica"
	}
	return fmt.Sprintf("%d replicas", n)
}

func passIf(ok bool) string {
	if ok {
		return run.AnalysisPass
	}
	return run.AnalysisFail
}

// smoke runs the HTTP checks against base; it returns the first failure, or "".
func smoke(ctx context.Context, base string, checks []Smoke) string {
	client := &http.Client{Timeout: 10 * time.Second}
	for _, s := range checks {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+s.Path, nil)
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Sprintf("GET %s: %v", s.Path, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode != s.Status {
			return fmt.Sprintf("GET %s: status %d, want %d", s.Path, resp.StatusCode, s.Status)
		}
		if s.Body != "" && !strings.Contains(string(body), s.Body) {
			return fmt.Sprintf("GET %s: body does not contain %q", s.Path, s.Body)
		}
	}
	return ""
}

func metricsText(ms []run.MetricValue) string {
	var parts []string
	for _, m := range ms {
		s := fmt.Sprintf("%s=%g", m.Name, m.Value)
		if m.Baseline != 0 {
			s += fmt.Sprintf(" (baseline %g)", m.Baseline)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}
