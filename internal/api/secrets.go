package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/paved/paved/internal/secret"
	"github.com/paved/paved/internal/store"
)

// Secrets is what the API asks of the secret service (*secret.Service). There is no way
// to read a value back: runs get them, people do not.
type Secrets interface {
	Put(ctx context.Context, p secret.PutParams) (store.Secret, bool, error)
	List(ctx context.Context, team string) ([]store.Secret, error)
	Delete(ctx context.Context, team, environment, name, actor string) error
}

// actor is who makes a request, for the audit log: the token's user, or "anonymous" on an
// open route.
func actor(r *http.Request) string {
	if u := actingUser(r); u != "" {
		return u
	}
	return "anonymous"
}

func (s *Server) secretRoutes(r chi.Router) {
	if s.cfg.Secrets == nil {
		return
	}
	r.Get("/teams/{team}/secrets", s.secretList)
	r.Put("/teams/{team}/secrets/{name}", s.secretPut)
	r.Delete("/teams/{team}/secrets/{name}", s.secretDelete)
}

// secretView is a secret as the API shows it: never its value.
type secretView struct {
	Name        string    `json:"name"`
	Environment string    `json:"environment"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	CreatedBy   string    `json:"created_by,omitempty"`
	UpdatedBy   string    `json:"updated_by,omitempty"`
}

func viewSecret(sec store.Secret) secretView {
	return secretView{Name: sec.Name, Environment: sec.Environment, CreatedAt: sec.CreatedAt, UpdatedAt: sec.UpdatedAt,
		CreatedBy: sec.CreatedBy, UpdatedBy: sec.UpdatedBy}
}

// secretPut sets a secret: {"value": "...", "environment": "prod"} (environment "" or left
// out: every stage of the team). 201 when new, 200 when replaced; the answer has no value.
func (s *Server) secretPut(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Value       *string `json:"value"`
		Environment string  `json:"environment"`
	}
	if err := decode(w, r, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if body.Value == nil {
		s.writeError(w, r, errorf(http.StatusBadRequest, `"value" is required: {"value": "...", "environment": "ENV or empty for all"}`))
		return
	}
	sec, created, err := s.cfg.Secrets.Put(r.Context(), secret.PutParams{Team: chi.URLParam(r, "team"), Environment: body.Environment,
		Name: chi.URLParam(r, "name"), Value: *body.Value, Actor: actor(r)})
	if err != nil {
		s.writeError(w, r, secretError(err))
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, viewSecret(sec))
}

// secretList lists a team's secrets: names, environments and times, never values.
func (s *Server) secretList(w http.ResponseWriter, r *http.Request) {
	list, err := s.cfg.Secrets.List(r.Context(), chi.URLParam(r, "team"))
	if err != nil {
		s.writeError(w, r, secretError(err))
		return
	}
	out := make([]secretView, len(list))
	for i, sec := range list {
		out[i] = viewSecret(sec)
	}
	writeJSON(w, http.StatusOK, map[string]any{"secrets": out})
}

// secretDelete removes a secret; ?environment=ENV names an environment's one.
func (s *Server) secretDelete(w http.ResponseWriter, r *http.Request) {
	team, name, env := chi.URLParam(r, "team"), chi.URLParam(r, "name"), r.URL.Query().Get("environment")
	if err := s.cfg.Secrets.Delete(r.Context(), team, env, name, actor(r)); err != nil {
		s.writeError(w, r, secretError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func secretError(err error) error {
	switch {
	case errors.Is(err, secret.ErrInvalid):
		return &apiError{status: http.StatusBadRequest, msg: err.Error()}
	case errors.Is(err, secret.ErrNotFound):
		return &apiError{status: http.StatusNotFound, msg: err.Error()}
	}
	return err
}
