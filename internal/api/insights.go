package api

import (
	"net/http"
	"time"

	"github.com/paved/paved/internal/insight"
)

// insightFilter reads the window and filters of an /api/v1/insights request: since and until
// are RFC 3339 times or Go durations back from now (since=24h); the default window is the
// last 7 days.
func insightFilter(r *http.Request, now time.Time) (insight.Filter, error) {
	q := r.URL.Query()
	f := insight.Filter{Pipeline: q.Get("pipeline"), Team: q.Get("team"), Repo: q.Get("repo"), Branch: q.Get("branch"), Stage: q.Get("stage")}
	parse := func(key string, def time.Time) (time.Time, error) {
		v := q.Get(key)
		if v == "" {
			return def, nil
		}
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			return t, nil
		}
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			return now.Add(-d), nil
		}
		return time.Time{}, errorf(http.StatusBadRequest, "?%s=%q: give an RFC 3339 time (2026-11-30T09:00:00Z) or a duration back from now (24h)", key, v)
	}
	var err error
	if f.Since, err = parse("since", now.Add(-7*24*time.Hour)); err != nil {
		return f, err
	}
	if f.Until, err = parse("until", time.Time{}); err != nil {
		return f, err
	}
	if !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return f, errorf(http.StatusBadRequest, "?since= must be before ?until=")
	}
	return f, nil
}

// insightRuns answers GET /api/v1/insights/runs: durations, queue wait and failures by stage
// and cause of the runs in a window (docs/insights.md).
func (s *Server) insightRuns(w http.ResponseWriter, r *http.Request) {
	f, err := insightFilter(r, time.Now())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	states, truncated, err := insight.Runs(r.Context(), s.store(r), f.Repo, f.Team, f.Since, f.Until)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rep := insight.Analyze(states, f)
	writeJSON(w, http.StatusOK, map[string]any{
		"window":    map[string]any{"since": f.Since.UTC(), "until": f.Until.UTC()},
		"truncated": truncated,
		"report":    rep,
	})
}

// insightAlerts answers GET /api/v1/insights/alerts: the alerts firing now.
func (s *Server) insightAlerts(w http.ResponseWriter, r *http.Request) {
	var firing []insight.Alert
	if s.cfg.Alerts != nil {
		firing = s.alertsFor(r, s.cfg.Alerts.Firing())
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": firing})
}

// insightTests answers GET /api/v1/insights/tests?repo=&pipeline=&stage=: each test's
// history over the flaky window (7 days) and the flaky tests, quarantined, with their flake
// rate and wasted time (docs/insights.md).
func (s *Server) insightTests(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	h := insight.TestHistory{Store: s.store(r)}
	rep, err := h.Tests(r.Context(), q.Get("repo"), q.Get("pipeline"), q.Get("stage"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// insightDORA answers GET /api/v1/insights/dora?environment=prod&since=&until=: the four
// DORA keys of an environment from its deployment history (docs/insights.md).
func (s *Server) insightDORA(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	f, err := insightFilter(r, now)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	env := r.URL.Query().Get("environment")
	if env == "" {
		s.writeError(w, r, errorf(http.StatusBadRequest, "?environment= is required: DORA keys are per environment (e.g. ?environment=prod)"))
		return
	}
	if s.cfg.Deployments == nil {
		s.writeError(w, r, errorf(http.StatusNotFound, "this server keeps no deployment history"))
		return
	}
	if f.Until.IsZero() {
		f.Until = now
	}
	d, err := insight.LoadDORA(r.Context(), s.cfg.Deployments, s.store(r), env, f.Since.UTC(), f.Until.UTC())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// insightCost answers GET /api/v1/insights/cost: CPU time, max RSS and their price per run,
// pipeline and team of the runs in a window (docs/insights.md).
func (s *Server) insightCost(w http.ResponseWriter, r *http.Request) {
	f, err := insightFilter(r, time.Now())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	price := s.cfg.CPUHourPrice
	if price == 0 {
		price = insight.DefaultCPUHourPrice
	}
	c, err := insight.LoadCost(r.Context(), s.store(r), f, price)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}
