package insight

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/paved/paved/internal/run"
)

// Alert is one condition worth a person's attention, as a rule found it.
type Alert struct {
	// Rule names the rule: duration_regression, failure_spike, queue_depth, cache_hit_ratio.
	Rule string `json:"rule"`
	// Subject is what it is about: a pipeline's name, or "" for the whole server.
	Subject string `json:"subject,omitempty"`
	Summary string `json:"summary"`
	// Value is what was measured, Baseline what it was compared with, Threshold the bound.
	Value     float64 `json:"value"`
	Baseline  float64 `json:"baseline"`
	Threshold float64 `json:"threshold"`
}

func (a Alert) key() string { return a.Rule + "\x00" + a.Subject }

// AlertSources are what the rules read. Runs is required; a nil gauge skips its rule.
type AlertSources struct {
	// Runs returns the runs created since the given time (finished or not).
	Runs func(ctx context.Context, since time.Time) ([]*run.State, error)
	// QueueDepth is how many stages wait for an executor slot now.
	QueueDepth func() int
	// CacheHits is the dependency cache's restores so far: exact hits and all restores.
	CacheHits func() (hits, restores int64)
}

// AlertConfig configures an Alerter. Zero fields take the defaults.
type AlertConfig struct {
	Sources AlertSources
	// Webhooks receive a POST of Slack-compatible JSON ({"text": ...} plus the alert) when an
	// alert starts firing and when it resolves. Default: none (alerts only in Firing).
	Webhooks []string
	// Interval between evaluations. Default: 1 minute.
	Interval time.Duration
	// DurationRegression: fire when a pipeline's P95 run duration this week exceeds last
	// week's by more than this fraction. Default: 0.20.
	DurationRegression float64
	// FailureSpike: fire when a pipeline's failure rate over the last day exceeds this many
	// times its baseline (the median of the 14 days before) and the median plus 3 MADs.
	// Default: 2.
	FailureSpike float64
	// MaxQueueDepth: fire when more stages than this wait. Default: 10.
	MaxQueueDepth int
	// MinCacheHitRatio: fire when fewer of the cache restores since the last evaluation
	// were hits. Default: 0.80.
	MinCacheHitRatio float64
	// MinRuns a window needs before a rate or a percentile counts. Default: 5.
	MinRuns int
	Client  *http.Client // default: 10 s timeout
	Logger  *slog.Logger
	Now     func() time.Time
}

func (c *AlertConfig) defaults() {
	c.Interval = cmp.Or(c.Interval, time.Minute)
	c.DurationRegression = cmp.Or(c.DurationRegression, 0.20)
	c.FailureSpike = cmp.Or(c.FailureSpike, 2)
	c.MaxQueueDepth = cmp.Or(c.MaxQueueDepth, 10)
	c.MinCacheHitRatio = cmp.Or(c.MinCacheHitRatio, 0.80)
	c.MinRuns = cmp.Or(c.MinRuns, 5)
	if c.Client == nil {
		c.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Alerter evaluates the rules periodically and notifies on changes: once when an alert
// starts firing, once when it resolves; an alert that keeps firing is not sent again.
type Alerter struct {
	cfg AlertConfig

	mu        sync.Mutex
	firing    map[string]Alert
	lastHits  [2]int64 // cache hits and restores at the last evaluation
	stop      context.CancelFunc
	done      chan struct{}
	evaluated chan struct{} // tests: a signal after each evaluation
}

// NewAlerter makes an alerter; it does nothing until Start.
func NewAlerter(cfg AlertConfig) (*Alerter, error) {
	if cfg.Sources.Runs == nil {
		return nil, fmt.Errorf("insight: alerts need Sources.Runs")
	}
	cfg.defaults()
	return &Alerter{cfg: cfg, firing: map[string]Alert{}}, nil
}

// Start evaluates at once and then every Interval until Stop.
func (a *Alerter) Start(ctx context.Context) error {
	ctx, a.stop = context.WithCancel(ctx)
	a.done = make(chan struct{})
	go func() {
		defer close(a.done)
		t := time.NewTicker(a.cfg.Interval)
		defer t.Stop()
		for {
			if err := a.Evaluate(ctx); err != nil && ctx.Err() == nil {
				a.cfg.Logger.Warn("alerts: evaluation failed", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

// Stop ends the evaluations.
func (a *Alerter) Stop() {
	if a.stop != nil {
		a.stop()
		<-a.done
	}
}

// Firing lists the alerts firing now, by rule and subject.
func (a *Alerter) Firing() []Alert {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Alert, 0, len(a.firing))
	for _, al := range a.firing {
		out = append(out, al)
	}
	slices.SortFunc(out, func(x, y Alert) int { return cmp.Compare(x.key(), y.key()) })
	return out
}

// Evaluate runs every rule once and notifies the webhooks of what changed.
func (a *Alerter) Evaluate(ctx context.Context) error {
	now := a.cfg.Now()
	states, err := a.cfg.Sources.Runs(ctx, now.Add(-15*24*time.Hour))
	if err != nil {
		return fmt.Errorf("insight: alerts: %w", err)
	}
	found := a.durationRegressions(states, now)
	found = append(found, a.failureSpikes(states, now)...)
	if q := a.cfg.Sources.QueueDepth; q != nil {
		if d := q(); d > a.cfg.MaxQueueDepth {
			found = append(found, Alert{Rule: "queue_depth", Summary: fmt.Sprintf("%d stages wait for an executor (more than %d)", d, a.cfg.MaxQueueDepth),
				Value: float64(d), Threshold: float64(a.cfg.MaxQueueDepth)})
		}
	}
	if c := a.cfg.Sources.CacheHits; c != nil {
		hits, restores := c()
		a.mu.Lock()
		dh, dr := hits-a.lastHits[0], restores-a.lastHits[1]
		prev, wasFiring := a.firing[Alert{Rule: "cache_hit_ratio"}.key()]
		if dr >= int64(a.cfg.MinRuns) {
			// Judged: the next ratio is over the restores after these.
			a.lastHits = [2]int64{hits, restores}
		}
		a.mu.Unlock()
		switch r := float64(dh) / float64(max(dr, 1)); {
		case dr < int64(a.cfg.MinRuns):
			// Too few restores to judge: the counts add up until there are enough, and an
			// alert already firing stays as it is rather than resolving on no data.
			if wasFiring {
				found = append(found, prev)
			}
		case r < a.cfg.MinCacheHitRatio:
			found = append(found, Alert{Rule: "cache_hit_ratio", Summary: fmt.Sprintf("%.0f%% of %d cache restores were hits (below %.0f%%)", r*100, dr, a.cfg.MinCacheHitRatio*100),
				Value: r, Threshold: a.cfg.MinCacheHitRatio})
		}
	}

	a.mu.Lock()
	var started, resolved []Alert
	now2 := map[string]Alert{}
	for _, al := range found {
		now2[al.key()] = al
		if _, ok := a.firing[al.key()]; !ok {
			started = append(started, al)
		}
	}
	for k, al := range a.firing {
		if _, ok := now2[k]; !ok {
			resolved = append(resolved, al)
		}
	}
	a.firing = now2
	a.mu.Unlock()
	for _, al := range started {
		a.notify(ctx, "firing", al)
	}
	for _, al := range resolved {
		a.notify(ctx, "resolved", al)
	}
	if a.evaluated != nil {
		a.evaluated <- struct{}{}
	}
	return nil
}

// byPipeline groups finished runs by pipeline name.
func byPipeline(states []*run.State) map[string][]*run.State {
	out := map[string][]*run.State{}
	for _, s := range states {
		if s.Done() {
			out[s.Info.Pipeline.Name] = append(out[s.Info.Pipeline.Name], s)
		}
	}
	return out
}

// durationRegressions compares each pipeline's P95 run duration over the last 7 days with
// the 7 days before.
func (a *Alerter) durationRegressions(states []*run.State, now time.Time) []Alert {
	var out []Alert
	for name, runs := range byPipeline(states) {
		var this, last []int64
		for _, s := range runs {
			if s.Phase != run.Succeeded {
				continue // a failed run's duration says where it failed, not how slow it is
			}
			d := s.FinishedAt.Sub(s.CreatedAt).Milliseconds()
			switch age := now.Sub(s.FinishedAt); {
			case age < 7*24*time.Hour:
				this = append(this, d)
			case age < 14*24*time.Hour:
				last = append(last, d)
			}
		}
		if len(this) < a.cfg.MinRuns || len(last) < a.cfg.MinRuns {
			continue
		}
		p, base := percentiles(this).P95, percentiles(last).P95
		if bound := float64(base) * (1 + a.cfg.DurationRegression); float64(p) > bound {
			out = append(out, Alert{Rule: "duration_regression", Subject: name,
				Summary: fmt.Sprintf("pipeline %s: P95 run duration %s this week, %s the week before (+%.0f%%)", name,
					time.Duration(p)*time.Millisecond, time.Duration(base)*time.Millisecond, (float64(p)/float64(base)-1)*100),
				Value: float64(p), Baseline: float64(base), Threshold: bound})
		}
	}
	return out
}

// failureSpikes compares each pipeline's failure rate over the last day with the median of
// its daily rates over the 14 days before; the bound is robust to one bad day in the
// baseline (median and MAD, not mean and deviation).
func (a *Alerter) failureSpikes(states []*run.State, now time.Time) []Alert {
	var out []Alert
	for name, runs := range byPipeline(states) {
		var days [15][2]int // failed, finished; day 0 is the last 24 h
		for _, s := range runs {
			d := int(now.Sub(s.FinishedAt) / (24 * time.Hour))
			if d < 0 || d >= len(days) || s.Phase == run.Cancelled {
				continue
			}
			days[d][1]++
			if s.Phase == run.Failed || s.Phase == run.RolledBack {
				days[d][0]++
			}
		}
		if days[0][1] < a.cfg.MinRuns {
			continue
		}
		var rates []float64
		for _, d := range days[1:] {
			if d[1] > 0 {
				rates = append(rates, float64(d[0])/float64(d[1]))
			}
		}
		if len(rates) < 3 {
			continue // no baseline yet
		}
		med := median(rates)
		dev := make([]float64, len(rates))
		for i, r := range rates {
			dev[i] = math.Abs(r - med)
		}
		bound := max(med*a.cfg.FailureSpike, med+3*median(dev))
		if bound == 0 {
			bound = 1.0 / float64(a.cfg.MinRuns) // a pipeline that never failed: one failure in MinRuns is noise
		}
		rate := float64(days[0][0]) / float64(days[0][1])
		if rate > bound {
			out = append(out, Alert{Rule: "failure_spike", Subject: name,
				Summary: fmt.Sprintf("pipeline %s: %d of %d runs failed in the last day (%.0f%%; baseline %.0f%%)", name, days[0][0], days[0][1], rate*100, med*100),
				Value:   rate, Baseline: med, Threshold: bound})
		}
	}
	return out
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// notify posts one change to every webhook, trying each up to three times.
func (a *Alerter) notify(ctx context.Context, status string, al Alert) {
	icon := ":rotating_light:"
	if status == "resolved" {
		icon = ":white_check_mark:"
	}
	body, _ := json.Marshal(map[string]any{
		"text":   fmt.Sprintf("%s [%s] %s", icon, status, al.Summary),
		"status": status,
		"alert":  al,
	})
	for _, url := range a.cfg.Webhooks {
		var err error
		for attempt := range 3 {
			if attempt > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Duration(attempt) * time.Second):
				}
			}
			if err = a.post(ctx, url, body); err == nil {
				break
			}
		}
		if err != nil {
			a.cfg.Logger.Warn("alerts: webhook failed", "url", url, "err", err)
		}
	}
}

func (a *Alerter) post(ctx context.Context, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}
