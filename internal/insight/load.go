package insight

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Load is the scheduler's load at one moment (schedule.Stats, without importing it).
type Load struct {
	Capacity, Running int
	Queued            map[string]map[string]int // priority class → team → stages
	RunningByTeam     map[string]int
}

// loadCollector reads the load at each scrape, so the gauges are never stale.
type loadCollector struct {
	load                         func() Load
	capacity, running, q, teamRn *prometheus.Desc
}

func (c *loadCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.capacity
	ch <- c.running
	ch <- c.q
	ch <- c.teamRn
}

func (c *loadCollector) Collect(ch chan<- prometheus.Metric) {
	l := c.load()
	ch <- prometheus.MustNewConstMetric(c.capacity, prometheus.GaugeValue, float64(l.Capacity))
	ch <- prometheus.MustNewConstMetric(c.running, prometheus.GaugeValue, float64(l.Running))
	for class, teams := range l.Queued {
		for team, n := range teams {
			ch <- prometheus.MustNewConstMetric(c.q, prometheus.GaugeValue, float64(n), class, team)
		}
	}
	for team, n := range l.RunningByTeam {
		ch <- prometheus.MustNewConstMetric(c.teamRn, prometheus.GaugeValue, float64(n), team)
	}
}

// WatchLoad exposes the executor capacity, the slots in use and the queue depth by priority
// class and team, read from load at each scrape.
func (m *Metrics) WatchLoad(load func() Load) {
	m.reg.MustRegister(&loadCollector{
		load:     load,
		capacity: prometheus.NewDesc("paved_executor_capacity", "Stages that can run at once (--capacity).", nil, nil),
		running:  prometheus.NewDesc("paved_executor_running", "Stages running now: executor slots in use.", nil, nil),
		q: prometheus.NewDesc("paved_queue_depth", "Ready stages waiting for an executor slot, by priority class and team.",
			[]string{"priority", "team"}, nil),
		teamRn: prometheus.NewDesc("paved_team_running", "Stages running now, by team (compare with the team's quota).",
			[]string{"team"}, nil),
	})
}

// WatchInbox exposes how many accepted webhook triggers wait to be routed, read at each
// scrape (pending may count only up to a bound; the gauge then shows the bound).
func (m *Metrics) WatchInbox(pending func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "paved_inbox_pending",
		Help: "Accepted webhook triggers not yet routed to pipelines.",
	}, func() float64 { return float64(pending()) }))
}

// Hook records how a webhook delivery was answered and how long it took
// (api.Config.OnHook).
func (m *Metrics) Hook(provider string, status int, took time.Duration) {
	m.hooks.WithLabelValues(provider, strconv.Itoa(status)).Observe(took.Seconds())
}

func newHookHistogram() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "paved_webhook_ack_seconds",
		Help: "Time from a webhook delivery's arrival to its answer (202 only once it is durably in the inbox), by provider and status.",
		// 0.5 ms to ~1 s: group commit answers in milliseconds; a slow disk shows as the tail.
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 12),
	}, []string{"provider", "status"})
}
