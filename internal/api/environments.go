package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/paved/paved/internal/deploy"
	"github.com/paved/paved/internal/promote"
	"github.com/paved/paved/internal/store"
)

// Environments is what the API asks of the deploy controller.
type Environments interface {
	Environments() []deploy.EnvironmentStatus
	Status(name string) (deploy.EnvironmentStatus, error)
	Rollback(ctx context.Context, p deploy.RollbackParams, rep deploy.Reporter) (store.Deployment, error)
}

// Deployments is the deployment history in the store.
type Deployments interface {
	DeploymentGet(ctx context.Context, id string) (store.Deployment, error)
	DeploymentList(ctx context.Context, p store.DeploymentListParams) ([]store.Deployment, error)
}

func (s *Server) environmentRoutes(r chi.Router) {
	if s.cfg.Environments == nil || s.cfg.Deployments == nil {
		return
	}
	r.Get("/environments", s.environmentList)
	r.Get("/environments/{env}", s.environmentGet)
	r.Get("/environments/{env}/deployments", s.environmentDeployments)
	r.Post("/environments/{env}/rollback", s.environmentRollback)
	r.Get("/deployments/{id}", s.deploymentGet)
}

// environmentList is the deploy controller's environments the caller may see; with
// promotion configured, each of them also carries its place in the promotion path
// ("promotion", see GET /api/v1/promotion/environments for the whole path, environments not
// yet deployed to included).
func (s *Server) environmentList(w http.ResponseWriter, r *http.Request) {
	list := visible(r, s.cfg.Environments.Environments(), func(e deploy.EnvironmentStatus) (string, bool) {
		res, err := s.envTeam(r, e.Name)
		return res.team, err == nil && !res.adminOnly
	})
	if s.cfg.Promote == nil {
		writeJSON(w, http.StatusOK, list)
		return
	}
	path, err := s.cfg.Promote.Environments(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	type withPromotion struct {
		deploy.EnvironmentStatus
		Promotion *promote.EnvironmentView `json:"promotion,omitempty"`
	}
	out := make([]withPromotion, len(list))
	for i, e := range list {
		out[i].EnvironmentStatus = e
		for j := range path {
			if path[j].Name == e.Name {
				out[i].Promotion = &path[j]
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// environmentGet is the environment now: pools, weights, replicas, the live deployment
// step (a canary's weights and last analysis) and the proxy's metrics.
func (s *Server) environmentGet(w http.ResponseWriter, r *http.Request) {
	st, err := s.cfg.Environments.Status(chi.URLParam(r, "env"))
	if err != nil {
		s.writeError(w, r, envError(err))
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) environmentDeployments(w http.ResponseWriter, r *http.Request) {
	p := store.DeploymentListParams{Environment: chi.URLParam(r, "env"), Outcome: r.URL.Query().Get("outcome")}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := atoiParam(v)
		if err != nil {
			s.writeError(w, r, errorf(http.StatusBadRequest, "limit: %v", err))
			return
		}
		p.Limit = n
	}
	list, err := s.cfg.Deployments.DeploymentList(r.Context(), p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) deploymentGet(w http.ResponseWriter, r *http.Request) {
	d, err := s.cfg.Deployments.DeploymentGet(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// environmentRollback redeploys an earlier deployment ({"to": ID}, default the one before
// what runs) and answers when it is done, with the new deployment's record.
func (s *Server) environmentRollback(w http.ResponseWriter, r *http.Request) {
	var body struct {
		To string `json:"to"`
		By string `json:"by"`
	}
	if r.ContentLength != 0 {
		if err := decode(w, r, &body); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	// Who rolled back is who the token belongs to, not what the body says.
	if by := actingUser(r); by != "" {
		body.By = by
	} else if body.By == "" {
		body.By = "api"
	}
	d, err := s.cfg.Environments.Rollback(r.Context(), deploy.RollbackParams{Environment: chi.URLParam(r, "env"), To: body.To, By: body.By}, nil)
	if err != nil {
		s.writeError(w, r, envError(err))
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// envError maps the deploy package's errors to statuses.
func envError(err error) error {
	switch {
	case errors.Is(err, deploy.ErrUnknownEnvironment):
		return &apiError{status: http.StatusNotFound, msg: err.Error()}
	case errors.Is(err, deploy.ErrNothingToRollBack):
		return &apiError{status: http.StatusConflict, msg: err.Error()}
	case errors.Is(err, deploy.ErrBadRequest):
		return &apiError{status: http.StatusBadRequest, msg: err.Error()}
	}
	return err
}

func atoiParam(v string) (int, error) {
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' || n > 1e6 {
			return 0, errors.New("want a whole number from 0 to 1000000")
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}
