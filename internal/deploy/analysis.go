package deploy

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/paved/paved/internal/run"
)

// Tracks: the proxy's pools, and the labels of the metrics.
const (
	trackStable   = "stable"
	trackCanary   = "canary"
	trackBaseline = "baseline"
)

// analyzer judges one canary step: canary against baseline.
type analyzer struct {
	cfg Analysis
	src Source
	// restarts and rss read the canary's replicas now.
	restarts func() int
	rss      func() int64
	now      func() time.Time
	// report is called with every measurement that does not end the step (a pass, an
	// inconclusive or error measurement, a failure within failure_limit) and with whether
	// the deployment is paused for lack of traffic.
	report func(a run.Analysis, paused bool) error
}

// step runs measurements until the step passes (Count passes) or fails; on failure it
// returns at once with the deciding measurement, so that the caller can cut traffic before
// it writes anything.
func (an *analyzer) step(ctx context.Context, step int) (pass bool, deciding run.Analysis, err error) {
	a := an.cfg
	mark := func() error {
		if err := an.src.Mark(ctx, trackCanary); err != nil {
			return err
		}
		return an.src.Mark(ctx, trackBaseline)
	}
	restarts0 := an.restarts()
	if err := mark(); err != nil {
		return false, run.Analysis{}, err
	}
	passes, failures, errs := 0, 0, 0
	var pausedSince time.Time
	t := time.NewTicker(a.Interval)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-t.C:
		case <-ctx.Done():
			return false, run.Analysis{}, ctx.Err()
		}
		c, cerr := an.src.Measure(ctx, trackCanary)
		b, berr := an.src.Measure(ctx, trackBaseline)
		if e := firstErr(cerr, berr); e != nil {
			if ctx.Err() != nil {
				return false, run.Analysis{}, ctx.Err()
			}
			errs++
			m := run.Analysis{Step: step, Measurement: n, Outcome: run.AnalysisError, Reason: e.Error()}
			if errs > a.ConsecutiveErrorLimit {
				m.Outcome = run.AnalysisFail
				m.Reason = fmt.Sprintf("%d metric errors in a row (consecutive_error_limit %d): %v", errs, a.ConsecutiveErrorLimit, e)
				return false, m, nil
			}
			if err := an.report(m, !pausedSince.IsZero()); err != nil {
				return false, m, err
			}
			continue
		}
		errs = 0
		m := an.judge(c, b, an.restarts()-restarts0)
		m.Step, m.Measurement = step, n
		switch m.Outcome {
		case run.AnalysisFail:
			failures++
			if failures > a.FailureLimit {
				return false, m, nil
			}
			pausedSince = time.Time{}
			if err := mark(); err != nil {
				return false, m, err
			}
		case run.AnalysisInconclusive:
			// The window stays open: the next measurement covers this one too.
			if pausedSince.IsZero() {
				pausedSince = an.now()
			} else if an.now().Sub(pausedSince) > a.InconclusiveTimeout {
				m.Outcome = run.AnalysisFail
				m.Reason = fmt.Sprintf("inconclusive for more than %s (%s); not promoting on no data", a.InconclusiveTimeout, m.Reason)
				return false, m, nil
			}
		case run.AnalysisPass:
			passes++
			pausedSince = time.Time{}
			if err := mark(); err != nil {
				return false, m, err
			}
		}
		if passes >= a.Count {
			return true, m, nil
		}
		if err := an.report(m, !pausedSince.IsZero()); err != nil {
			return false, m, err
		}
	}
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// judge compares one window of the canary with the baseline's. Restarts and memory fail
// whatever the traffic; latency and errors need MinSamples requests on both sides, or the
// measurement is inconclusive.
func (an *analyzer) judge(c, b Sample, restarts int) run.Analysis {
	a := an.cfg
	var ms []run.MetricValue
	var failed []string
	add := func(v run.MetricValue) {
		ms = append(ms, v)
		if v.Outcome == run.AnalysisFail {
			failed = append(failed, fmt.Sprintf("%s %s > %s", v.Name, num(v.Value), num(v.Threshold)))
		}
	}
	outcome := func(bad bool) string {
		if bad {
			return run.AnalysisFail
		}
		return run.AnalysisPass
	}
	add(run.MetricValue{Name: "restarts", Value: float64(restarts), Threshold: float64(a.MaxRestarts), Outcome: outcome(restarts > a.MaxRestarts)})
	if a.MemoryLimit > 0 && an.rss != nil {
		rss, limit := an.rss(), 0.9*float64(a.MemoryLimit)
		add(run.MetricValue{Name: "memory_bytes", Value: float64(rss), Threshold: limit, Outcome: outcome(float64(rss) > limit)})
	}
	latencyShort := false
	enough := c.Requests >= int64(a.MinSamples) && b.Requests >= int64(a.MinSamples)
	sampleOutcome := run.AnalysisPass
	if !enough {
		sampleOutcome = run.AnalysisInconclusive
	}
	add(run.MetricValue{Name: "requests", Value: float64(c.Requests), Threshold: float64(a.MinSamples), Baseline: float64(b.Requests), Outcome: sampleOutcome})
	if enough {
		errThreshold := max(a.MaxErrorRate, b.ErrorRate+a.MaxErrorRate)
		add(run.MetricValue{Name: "error_rate", Value: round(c.ErrorRate), Threshold: round(errThreshold), Baseline: round(b.ErrorRate),
			Outcome: outcome(c.ErrorRate > errThreshold)})
		p99Threshold := max(float64(b.P99)*(1+a.MaxP99Increase), float64(b.P99+a.P99Slack))
		v := run.MetricValue{Name: "p99_latency_ms", Value: ms2(float64(c.P99)), Threshold: ms2(p99Threshold), Baseline: ms2(float64(b.P99)),
			Outcome: outcome(float64(c.P99) > p99Threshold)}
		if c.Requests < minP99Samples || b.Requests < minP99Samples {
			// The P99 of fewer than 100 requests is their maximum: one slow request, noise.
			v.Outcome = run.AnalysisInconclusive
			latencyShort = true
		}
		add(v)
	}
	out := run.Analysis{Metrics: ms}
	switch {
	case len(failed) > 0:
		out.Outcome, out.Reason = run.AnalysisFail, strings.Join(failed, "; ")
	case !enough:
		out.Outcome = run.AnalysisInconclusive
		out.Reason = fmt.Sprintf("too little traffic: canary %d, baseline %d requests, %d each needed", c.Requests, b.Requests, a.MinSamples)
	case latencyShort:
		out.Outcome = run.AnalysisInconclusive
		out.Reason = fmt.Sprintf("too little traffic to judge P99: canary %d, baseline %d requests, %d each needed", c.Requests, b.Requests, minP99Samples)
	default:
		out.Outcome = run.AnalysisPass
	}
	return out
}

// minP99Samples: below it a P99 is not judged (the window grows until it is).
const minP99Samples = 100

func round(f float64) float64 { return math.Round(f*1e5) / 1e5 }
func ms2(ns float64) float64  { return math.Round(ns/1e4) / 100 }

func num(f float64) string { return fmt.Sprintf("%g", f) }
