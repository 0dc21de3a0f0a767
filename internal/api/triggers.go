package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/paved/paved/internal/store"
)

// TriggerStore is what the trigger routes read.
type TriggerStore interface {
	TriggerGet(ctx context.Context, id string) (store.TriggerRecord, error)
	TriggerList(ctx context.Context, p store.TriggerListParams) ([]store.TriggerRecord, error)
}

func (s *Server) triggerStore() (TriggerStore, bool) {
	ts, ok := s.cfg.Store.(TriggerStore)
	return ts, ok
}

func (s *Server) triggerList(w http.ResponseWriter, r *http.Request) {
	ts, ok := s.triggerStore()
	if !ok {
		s.writeError(w, r, errorf(http.StatusNotFound, "this server keeps no trigger inbox"))
		return
	}
	limit := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			s.writeError(w, r, errorf(http.StatusBadRequest, "limit %q must be a positive number", v))
			return
		}
		limit = n
	}
	list, err := ts.TriggerList(r.Context(), store.TriggerListParams{Limit: limit, Pending: r.URL.Query().Get("pending") == "true"})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rt := s.repoTeams(r)
	list = visible(r, list, func(t store.TriggerRecord) (string, bool) { return rt.of(t.Repo) })
	writeJSON(w, http.StatusOK, map[string]any{"triggers": list})
}

func (s *Server) triggerGet(w http.ResponseWriter, r *http.Request) {
	ts, ok := s.triggerStore()
	if !ok {
		s.writeError(w, r, errorf(http.StatusNotFound, "this server keeps no trigger inbox"))
		return
	}
	t, err := ts.TriggerGet(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}
