package insight

import (
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paved/paved/internal/run"
)

// eventMetrics turns the event stream into Prometheus series. It folds each run in flight
// itself (run.State.Apply), because a StageFinished alone does not say how long the stage ran
// or why it failed; a run is dropped at RunFinished. A run already in flight when the server
// started is not counted: its earlier events were never seen here.
type eventMetrics struct {
	mu   sync.Mutex
	runs map[string]*run.State

	stageDuration *prometheus.HistogramVec
	stageResults  *prometheus.CounterVec
	runDuration   *prometheus.HistogramVec
	runsFinished  *prometheus.CounterVec
	gates         *prometheus.CounterVec
	deployments   *prometheus.CounterVec
	rollbacks     *prometheus.CounterVec
	rollbackTime  prometheus.Histogram
	stageCPU      *prometheus.CounterVec
	tests         *prometheus.CounterVec
	quarantined   *prometheus.CounterVec
}

func newEventMetrics() *eventMetrics {
	// 100ms to ~7 h: a lint takes a second, an integration suite an hour.
	durations := prometheus.ExponentialBuckets(0.1, 3, 11)
	return &eventMetrics{
		runs: map[string]*run.State{},
		stageDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "paved_stage_duration_seconds",
			Help:    "Time a stage attempt ran, started to finished, by pipeline, stage and outcome.",
			Buckets: durations,
		}, []string{"pipeline", "stage", "status"}),
		stageResults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paved_stage_results_total",
			Help: "Stage attempts that ended, by pipeline, stage, status and failure cause (empty when it did not fail).",
		}, []string{"pipeline", "stage", "status", "cause"}),
		runDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "paved_run_duration_seconds",
			Help:    "Time a run took from created to finished, by pipeline and final phase.",
			Buckets: durations,
		}, []string{"pipeline", "phase"}),
		runsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paved_runs_finished_total",
			Help: "Runs that ended, by pipeline and final phase.",
		}, []string{"pipeline", "phase"}),
		gates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paved_gate_decisions_total",
			Help: "Gate decisions, by gate kind and decision (pass, warn, block).",
		}, []string{"gate", "decision"}),
		deployments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paved_deployments_total",
			Help: "Deployments that ended, by environment, strategy and outcome (succeeded, failed, rolled_back).",
		}, []string{"environment", "strategy", "outcome"}),
		rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paved_rollbacks_total",
			Help: "Automatic rollbacks, by environment, strategy and reason: the metric whose analysis failed (error_rate, p99_latency_ms, restarts, memory_bytes), or readiness, smoke or other.",
		}, []string{"environment", "strategy", "reason"}),
		rollbackTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "paved_rollback_seconds",
			Help:    "Time from a failing decision to the new version's 0% traffic.",
			Buckets: prometheus.ExponentialBuckets(0.00001, 10, 7),
		}),
		stageCPU: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paved_stage_cpu_seconds_total",
			Help: "CPU time (user and system) the processes of stage attempts used, by pipeline and stage.",
		}, []string{"pipeline", "stage"}),
		tests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paved_tests_total",
			Help: "Test cases in stages' JUnit reports, by pipeline, stage and status (passed, failed, errored, skipped).",
		}, []string{"pipeline", "stage", "status"}),
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paved_quarantined_failures_total",
			Help: "Stage attempts that failed only because of quarantined flaky tests and succeeded anyway, by pipeline and stage.",
		}, []string{"pipeline", "stage"}),
	}
}

func (m *eventMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.stageDuration, m.stageResults, m.runDuration, m.runsFinished, m.gates,
		m.deployments, m.rollbacks, m.rollbackTime, m.stageCPU, m.tests, m.quarantined}
}

func (m *eventMetrics) event(e run.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.runs[e.RunID]
	if e.Type == run.RunCreated {
		s = &run.State{}
		m.runs[e.RunID] = s
	}
	if s == nil {
		return
	}
	if err := s.Apply(e); err != nil {
		delete(m.runs, e.RunID) // out of step (a restart): stop rather than count wrong
		return
	}
	pipeline := s.Info.Pipeline.Name
	switch e.Type {
	case run.StageFinished:
		st := s.Stage(e.Stage)
		m.stageResults.WithLabelValues(pipeline, st.Def.Base, e.Status, Cause(st)).Inc()
		if !st.StartedAt.IsZero() {
			m.stageDuration.WithLabelValues(pipeline, st.Def.Base, e.Status).Observe(e.Time.Sub(st.StartedAt).Seconds())
		}
		if e.CPUMS > 0 {
			m.stageCPU.WithLabelValues(pipeline, st.Def.Base).Add(float64(e.CPUMS) / 1000)
		}
	case run.TestsReported:
		st := s.Stage(e.Stage)
		for status, n := range map[string]int{"passed": e.Tests.Passed, "failed": e.Tests.Failed, "errored": e.Tests.Errored, "skipped": e.Tests.Skipped} {
			if n > 0 {
				m.tests.WithLabelValues(pipeline, st.Def.Base, status).Add(float64(n))
			}
		}
		if len(e.Tests.Quarantined) > 0 {
			m.quarantined.WithLabelValues(pipeline, st.Def.Base).Inc()
		}
	case run.GateEvaluated:
		if e.Gate != nil {
			m.gates.WithLabelValues(e.Gate.Kind, e.Gate.Decision).Inc()
		}
	case run.DeploymentFinished:
		if d := e.Deployment; d != nil && d.Outcome != "" {
			m.deployments.WithLabelValues(d.Environment, d.Strategy, d.Outcome).Inc()
		}
	case run.RollbackStarted:
		if d := e.Deployment; d != nil {
			m.rollbacks.WithLabelValues(d.Environment, d.Strategy, rollbackReason(d)).Inc()
			if d.RollbackMS > 0 {
				m.rollbackTime.Observe(d.RollbackMS / 1000)
			}
		}
	case run.RunFinished:
		m.runsFinished.WithLabelValues(pipeline, string(s.Phase)).Inc()
		m.runDuration.WithLabelValues(pipeline, string(s.Phase)).Observe(s.FinishedAt.Sub(s.CreatedAt).Seconds())
		delete(m.runs, e.RunID)
	}
}

// rollbackReason names what made a deployment roll back, in a few values fit for a label:
// the first failing metric of the deciding analysis, else what the reason mentions.
func rollbackReason(d *run.Deployment) string {
	if a := d.Analysis; a != nil {
		for _, mv := range a.Metrics {
			if mv.Outcome == run.AnalysisFail {
				return mv.Name
			}
		}
	}
	r := strings.ToLower(d.Reason)
	for _, k := range []string{"readiness", "smoke", "inconclusive", "liveness", "crash"} {
		if strings.Contains(r, k) {
			return k
		}
	}
	return "other"
}
