package api

import (
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/trigger"
	"github.com/paved/paved/internal/trigger/bitbucket"
	"github.com/paved/paved/internal/trigger/generic"
	"github.com/paved/paved/internal/trigger/github"
	"github.com/paved/paved/internal/trigger/gitlab"
)

// maxHookBody is GitHub's own limit on a webhook payload (25 MiB).
const maxHookBody = 25 << 20

var providers = map[string]trigger.Provider{
	"github": github.Provider, "gitlab": gitlab.Provider, "bitbucket": bitbucket.Provider, "generic": generic.Provider,
}

// hook receives a webhook: read the body (bounded), parse it, find the repo, check the
// signature with the repo's secret, and answer 202 once the trigger is durably in the
// inbox. docs/webhooks.md documents the statuses.
// timedHook answers a delivery with hook and tells Config.OnHook how and how fast.
func (s *Server) timedHook(w http.ResponseWriter, r *http.Request) {
	if s.cfg.OnHook == nil {
		s.hook(w, r)
		return
	}
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	s.hook(sw, r)
	s.cfg.OnHook(chi.URLParam(r, "provider"), sw.status, time.Since(start))
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (s *Server) hook(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "provider")
	p, ok := providers[name]
	if !ok {
		s.writeError(w, r, errorf(http.StatusNotFound, "no webhook receiver %q; use /hooks/github, /hooks/gitlab, /hooks/bitbucket or /hooks/generic", name))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxHookBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.writeError(w, r, errorf(http.StatusRequestEntityTooLarge, "webhook body is over %d bytes", maxHookBody))
			return
		}
		s.writeError(w, r, errorf(http.StatusBadRequest, "read webhook body: %v", err))
		return
	}
	t, perr := p.Parse(r.Header, body)
	var ignored *trigger.IgnoredError
	if perr != nil && !errors.As(perr, &ignored) {
		s.writeError(w, r, errorf(http.StatusBadRequest, "%v", perr))
		return
	}
	if t.Repo == "" { // an ignored event that names no repo (an organisation's ping)
		writeJSON(w, http.StatusAccepted, map[string]any{"ignored": ignored.Reason})
		return
	}
	repo, err := s.cfg.Store.RepoGet(r.Context(), t.Repo)
	if errors.Is(err, store.ErrNotFound) {
		s.writeError(w, r, errorf(http.StatusNotFound, "repo %q is not registered; register it with POST /api/v1/repos (full_name %q, webhook_secret the webhook's secret)", t.Repo, t.Repo))
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := p.Verify(r.Header, body, repo.WebhookSecret); err != nil {
		s.writeError(w, r, errorf(http.StatusUnauthorized, "%v", err))
		return
	}
	if ignored != nil {
		writeJSON(w, http.StatusAccepted, map[string]any{"ignored": ignored.Reason})
		return
	}
	added, err := s.cfg.Inbox.Add(r.Context(), t)
	if err != nil {
		s.log.Error("webhook not stored", "provider", name, "repo", t.Repo, "err", err)
		s.writeError(w, r, errorf(http.StatusServiceUnavailable, "the trigger could not be stored; deliver it again"))
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"trigger_id": added.ID, "duplicate": added.Duplicate})
}
