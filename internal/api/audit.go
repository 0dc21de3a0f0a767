package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/paved/paved/internal/audit"
	"github.com/paved/paved/internal/store"
)

// AuditLog is what the API asks of the audit log (*audit.Log): it lists entries, and
// records the security-relevant actions that happen in handlers (hotfix runs, quota changes).
type AuditLog interface {
	List(ctx context.Context, p store.AuditListParams) ([]store.AuditEntry, error)
	Record(ctx context.Context, e audit.Entry) error
}

// auditRecord records an action of a request; without an audit log it does nothing.
func (s *Server) auditRecord(r *http.Request, e audit.Entry) error {
	if s.cfg.Audit == nil {
		return nil
	}
	if e.Actor == "" {
		e.Actor = actor(r)
	}
	return s.cfg.Audit.Record(r.Context(), e)
}

// auditList lists audit entries in seq order: ?actor=, ?action=, ?team=, ?since= and ?until=
// (RFC 3339), ?after=SEQ to page and ?limit= (default 100, at most 1000). Admins only once
// roles exist.
func (s *Server) auditList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := store.AuditListParams{Actor: q.Get("actor"), Action: q.Get("action"), Team: q.Get("team")}
	for _, f := range []struct {
		name string
		to   *time.Time
	}{{"since", &p.Since}, {"until", &p.Until}} {
		if v := q.Get(f.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				s.writeError(w, r, errorf(http.StatusBadRequest, "?%s=%q: want an RFC 3339 time such as 2026-01-02T15:04:05Z", f.name, v))
				return
			}
			*f.to = t
		}
	}
	for _, f := range []struct {
		name string
		max  int64
		set  func(int64)
	}{
		{"after", 1 << 62, func(v int64) { p.AfterSeq = v }},
		{"limit", 1000, func(v int64) { p.Limit = int(v) }},
	} {
		if v := q.Get(f.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || n > f.max {
				s.writeError(w, r, errorf(http.StatusBadRequest, "?%s=%q: want a number from 0 to %d", f.name, v, f.max))
				return
			}
			f.set(n)
		}
	}
	list, err := s.cfg.Audit.List(r.Context(), p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": list})
}
