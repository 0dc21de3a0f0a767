// Package insight turns what runs record into numbers for people and Prometheus: the
// server's metrics registry, served at /metrics, and analytics over the event log (durations
// and their percentiles, queue wait, failures by stage and by cause) behind
// /api/v1/insights.
package insight

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/paved/paved/internal/run"
)

// Metrics is one server's metrics. Its methods may be called concurrently.
type Metrics struct {
	reg       *prometheus.Registry
	queueWait *prometheus.HistogramVec
	events    *eventMetrics
	hooks     *prometheus.HistogramVec
}

// NewMetrics makes a registry with the Go runtime and process collectors and paved's own
// metrics (docs/metrics.md).
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "paved_stage_queue_wait_seconds",
			Help: "Time a stage attempt waited from queued (its needs succeeded) to started, by the run's priority class.",
			// 1ms to ~30 min: an idle server starts stages in milliseconds, a busy one
			// makes branch work wait for minutes.
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 11),
		}, []string{"priority", "team"}),
		events: newEventMetrics(),
		hooks:  newHookHistogram(),
	}
	m.reg.MustRegister(m.queueWait, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(m.events.collectors()...)
	m.reg.MustRegister(m.hooks)
	return m
}

// StageStarted records a stage attempt's queue wait (schedule.Config.OnStageStart).
func (m *Metrics) StageStarted(info *run.Info, _ string, wait time.Duration) {
	m.queueWait.WithLabelValues(info.Priority, info.Team).Observe(max(wait, 0).Seconds())
}

// Event counts what a run's event says (schedule.Config.OnEvent): stage durations and
// results by failure cause, run durations and outcomes, gate decisions.
func (m *Metrics) Event(e run.Event) { m.events.event(e) }

// WatchCache exposes the dependency cache's restores by outcome (hit, partial, miss) as
// paved_cache_restores_total, read from stats at each scrape.
func (m *Metrics) WatchCache(stats func() (hits, partials, misses int64)) {
	for i, outcome := range []string{"hit", "partial", "miss"} {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "paved_cache_restores_total",
			Help:        "Dependency cache restores by outcome: hit (the exact key), partial (a restore key), miss.",
			ConstLabels: prometheus.Labels{"outcome": outcome},
		}, func() float64 {
			h, p, mi := stats()
			return float64([]int64{h, p, mi}[i])
		}))
	}
}

// Register adds a collector of another part of paved (the deploy controller's proxy
// metrics); a collector already registered is left as it is.
func (m *Metrics) Register(c prometheus.Collector) {
	_ = m.reg.Register(c)
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
