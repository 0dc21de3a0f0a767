package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/paved/paved/internal/store"
)

// logSearch answers GET /api/v1/logs/search?q=WORDS&run=&stage=&repo=&team=&since=&until=&limit=
// with the stored (already masked) log lines holding every word, newest first.
func (s *Server) logSearch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := store.LogSearchParams{Query: q.Get("q"), RunID: q.Get("run"), Stage: q.Get("stage"), Repo: q.Get("repo"), Team: q.Get("team")}
	for key, dst := range map[string]*time.Time{"since": &p.Since, "until": &p.Until} {
		if v := q.Get(key); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				s.writeError(w, r, errorf(http.StatusBadRequest, "?%s=%q: give an RFC 3339 time such as 2026-11-30T09:00:00Z", key, v))
				return
			}
			*dst = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			s.writeError(w, r, errorf(http.StatusBadRequest, "?limit=%q: give a number from 1 to 1000", v))
			return
		}
		p.Limit = n
	}
	lines, err := s.store(r).LogSearch(r.Context(), p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"lines": lines})
}
