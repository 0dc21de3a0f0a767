package api

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/paved/paved/internal/execute/agent"
	"github.com/paved/paved/internal/store"
)

// AgentTokens is what the API needs of the store to manage agent tokens.
type AgentTokens interface {
	AgentTokenCreate(ctx context.Context, t store.AgentToken) error
	AgentTokenRevoke(ctx context.Context, t store.AgentToken) error
	AgentTokenList(ctx context.Context) ([]store.AgentToken, error)
}

// Agents serves the agent protocol (/api/v1/agent/, with agents' own tokens) and lists
// the agents it heard from.
type Agents interface {
	Handler() http.Handler
	Agents() []agent.Seen
}

var agentNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// agentRoutes are the admin routes of agents, under /api/v1 (with the users' auth).
func (s *Server) agentRoutes(r chi.Router) {
	if s.cfg.AgentTokens == nil {
		return
	}
	r.Get("/agents", s.agentList)
	r.Post("/agents", s.agentCreate)
	r.Delete("/agents/{name}", s.agentRevoke)
}

func (s *Server) agentList(w http.ResponseWriter, r *http.Request) {
	tokens, err := s.cfg.AgentTokens.AgentTokenList(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	seen := []agent.Seen{}
	if s.cfg.Agents != nil {
		seen = s.cfg.Agents.Agents()
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": tokens, "connected": seen})
}

// agentCreate makes an agent's token; the answer is the only time the token is shown.
func (s *Server) agentCreate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
	}
	if err := decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if !agentNameRE.MatchString(req.Name) {
		s.writeError(w, r, errorf(http.StatusBadRequest, "agent name %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", req.Name))
		return
	}
	tok := agent.NewToken()
	err := s.cfg.AgentTokens.AgentTokenCreate(r.Context(), store.AgentToken{Name: req.Name, Hash: agent.HashToken(tok), CreatedAt: time.Now().UTC()})
	if errors.Is(err, store.ErrConflict) {
		s.writeError(w, r, errorf(http.StatusConflict, "agent %s has a valid token; revoke it first (DELETE /api/v1/agents/%s)", req.Name, req.Name))
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"name": req.Name, "token": tok})
}

func (s *Server) agentRevoke(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if err := s.cfg.AgentTokens.AgentTokenRevoke(r.Context(), store.AgentToken{Name: name, RevokedAt: time.Now().UTC()}); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
