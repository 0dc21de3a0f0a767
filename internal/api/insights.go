package api

import (
	"net/http"
	"time"

	"github.com/paved/paved/internal/insight"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// insightRunLimit bounds how many runs one analytics answer folds: the newest in the window.
const insightRunLimit = 10000

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
	sums, err := s.cfg.Store.RunList(r.Context(), store.RunListParams{Repo: f.Repo, Team: f.Team, Limit: insightRunLimit})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var states []*run.State
	for _, sum := range sums {
		if sum.CreatedAt.Before(f.Since) || (!f.Until.IsZero() && !sum.CreatedAt.Before(f.Until)) {
			continue
		}
		evs, err := s.cfg.Store.EventList(r.Context(), store.EventListParams{RunID: sum.ID})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		st, err := run.Fold(evs)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		states = append(states, st)
	}
	rep := insight.Analyze(states, f)
	writeJSON(w, http.StatusOK, map[string]any{
		"window":    map[string]any{"since": f.Since.UTC(), "until": f.Until.UTC()},
		"truncated": len(sums) == insightRunLimit,
		"report":    rep,
	})
}
