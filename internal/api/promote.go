package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/paved/paved/internal/promote"
	"github.com/paved/paved/internal/store"
)

// UserHeader is the header older clients named their user with. The API ignores it: who acts
// is the user of the request's token (actingUser); tests send it to show a claim changes
// nothing.
const UserHeader = "X-Paved-User"

// actingUser is who makes a request: the user of its token, "" on an open route. Every
// handler that records who did something asks here.
func actingUser(r *http.Request) string {
	if p := principal(r); p != nil {
		return p.User
	}
	return ""
}

// Promoter is what the API asks of promotion (*promote.Service).
type Promoter interface {
	FreightList(ctx context.Context, limit int) ([]store.Freight, error)
	FreightGet(ctx context.Context, idOrAlias string) (store.Freight, error)
	PromotionList(ctx context.Context, p store.PromotionListParams) ([]store.Promotion, error)
	PromotionGet(ctx context.Context, id string) (store.Promotion, error)
	Promote(ctx context.Context, freight, env, by string) (store.Promotion, error)
	Hotfix(ctx context.Context, freight, env, by, reason string) (store.Promotion, error)
	Decide(ctx context.Context, id, by string, approve bool, reason string) (store.Promotion, error)
	Approvals(ctx context.Context, user string) ([]promote.Approval, error)
	ApprovalGet(ctx context.Context, id string) (promote.Approval, error)
	Environments(ctx context.Context) ([]promote.EnvironmentView, error)
}

func (s *Server) promoteRoutes(r chi.Router) {
	if s.cfg.Promote == nil {
		return
	}
	r.Get("/freight", s.freightList)
	r.Get("/freight/{id}", s.freightGet)
	r.Get("/promotions", s.promotionList)
	r.Post("/promotions", s.promotionCreate)
	r.Get("/promotions/{id}", s.promotionGet)
	r.Get("/promotion/environments", s.promotionEnvironments)
	r.Get("/approvals", s.approvalList)
	r.Get("/approvals/{id}", s.approvalGet)
	r.Post("/approvals/{id}/approve", s.decide(true))
	r.Post("/approvals/{id}/reject", s.decide(false))
}

func (s *Server) freightList(w http.ResponseWriter, r *http.Request) {
	n := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		var err error
		if n, err = atoiParam(v); err != nil {
			s.writeError(w, r, errorf(http.StatusBadRequest, "limit: %v", err))
			return
		}
	}
	list, err := s.cfg.Promote.FreightList(r.Context(), n)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rt := s.repoTeams(r)
	writeJSON(w, http.StatusOK, visible(r, list, func(f store.Freight) (string, bool) { return rt.of(f.Repo) }))
}

func (s *Server) freightGet(w http.ResponseWriter, r *http.Request) {
	f, err := s.cfg.Promote.FreightGet(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, f)
}

func (s *Server) promotionList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := store.PromotionListParams{Environment: q.Get("environment"), State: q.Get("state"), Freight: q.Get("freight")}
	if p.Freight != "" { // an alias works too
		if f, err := s.cfg.Promote.FreightGet(r.Context(), p.Freight); err == nil {
			p.Freight = f.ID
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := atoiParam(v)
		if err != nil {
			s.writeError(w, r, errorf(http.StatusBadRequest, "limit: %v", err))
			return
		}
		p.Limit = n
	}
	list, err := s.cfg.Promote.PromotionList(r.Context(), p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	freightTeams := map[string]resource{}
	writeJSON(w, http.StatusOK, visible(r, list, func(p store.Promotion) (string, bool) {
		res, ok := freightTeams[p.Freight]
		if !ok {
			res, _ = s.freightTeam(r, p.Freight)
			freightTeams[p.Freight] = res
		}
		return res.team, res.team != ""
	}))
}

func (s *Server) promotionGet(w http.ResponseWriter, r *http.Request) {
	p, err := s.cfg.Promote.PromotionGet(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// promotionCreate asks for a promotion: {"freight": ID or alias, "environment": ENV}, by
// the token's user; with "hotfix": true and a "reason", an emergency promotion. It answers
// 201 with the promotion as far as it got (blocked, pending or approved and deploying).
func (s *Server) promotionCreate(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Freight     string `json:"freight"`
		Environment string `json:"environment"`
		Hotfix      bool   `json:"hotfix"`
		Reason      string `json:"reason"`
	}
	if err := decode(w, r, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if body.Freight == "" || body.Environment == "" {
		s.writeError(w, r, errorf(http.StatusBadRequest, `give {"freight": ID or alias, "environment": ENV}`))
		return
	}
	promote := s.cfg.Promote.Promote
	if body.Hotfix {
		promote = func(ctx context.Context, freight, env, by string) (store.Promotion, error) {
			return s.cfg.Promote.Hotfix(ctx, freight, env, by, body.Reason)
		}
	}
	p, err := promote(r.Context(), body.Freight, body.Environment, actingUser(r))
	if err != nil {
		s.writeError(w, r, promoteError(err))
		return
	}
	writeJSON(w, http.StatusCreated, p)
}

// promotionEnvironments lists the promotion path: each environment's config in order, its
// target (deploy or gitops), what runs there and a gitops environment's drift.
func (s *Server) promotionEnvironments(w http.ResponseWriter, r *http.Request) {
	list, err := s.cfg.Promote.Environments(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) approvalList(w http.ResponseWriter, r *http.Request) {
	list, err := s.cfg.Promote.Approvals(r.Context(), r.URL.Query().Get("user"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rt := s.repoTeams(r)
	writeJSON(w, http.StatusOK, visible(r, list, func(a promote.Approval) (string, bool) { return rt.of(a.Freight.Repo) }))
}

func (s *Server) approvalGet(w http.ResponseWriter, r *http.Request) {
	a, err := s.cfg.Promote.ApprovalGet(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		s.writeError(w, r, promoteError(err))
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// decide records the token user's approval or rejection ({"reason": "..."} optional).
func (s *Server) decide(approve bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Reason string `json:"reason"`
		}
		if r.ContentLength != 0 {
			if err := decode(w, r, &body); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		p, err := s.cfg.Promote.Decide(r.Context(), chi.URLParam(r, "id"), actingUser(r), approve, body.Reason)
		if err != nil {
			s.writeError(w, r, promoteError(err))
			return
		}
		writeJSON(w, http.StatusOK, p)
	}
}

// promoteError maps the promote package's errors to statuses.
func promoteError(err error) error {
	switch {
	case errors.Is(err, promote.ErrNoUser), errors.Is(err, promote.ErrNoReason):
		return &apiError{status: http.StatusBadRequest, msg: err.Error()}
	case errors.Is(err, promote.ErrAuthor), errors.Is(err, promote.ErrNotApprover), errors.Is(err, promote.ErrNotHotfixUser):
		return &apiError{status: http.StatusForbidden, msg: err.Error()}
	case errors.Is(err, promote.ErrNotPending), errors.Is(err, promote.ErrAlreadyDecided), errors.Is(err, promote.ErrInProgress), errors.Is(err, store.ErrConflict):
		return &apiError{status: http.StatusConflict, msg: err.Error()}
	case errors.Is(err, promote.ErrUnknownEnvironment):
		return &apiError{status: http.StatusNotFound, msg: err.Error()}
	}
	return err
}
