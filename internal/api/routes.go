package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/paved/paved/internal/access"
	"github.com/paved/paved/internal/store"
)

// authKind says who may call a route at all.
type authKind int

const (
	authOpen        authKind = iota // no token: health, webhooks (signed), login, the UI's files
	authAny                         // any valid token; the handler shows only the caller's teams
	authServerAdmin                 // server admins only
	authTeam                        // a role in the team of the resource the route names
)

// policy is one route's entry in the table: who may call it, and for authTeam, the role
// it needs and how the team of its resource is found.
type policy struct {
	auth authKind
	role access.Role
	find resolver
	// approve: the caller must be able to approve into the resource's environment
	// (access.Principal.CanApprove) instead of having role.
	approve bool
}

// resource is what a resolver found: the owning team, and the environment for approvals.
// adminOnly: the resource belongs to no team, so only server admins may touch it: others get
// 404 for an environment nothing was deployed to yet, 403 for the registry's catalog.
// anyUser: the request names no resource after all (the registry's version check, a
// missing parameter the handler reports), so any valid token may make it. minRole raises
// the policy's role (pushing to the registry needs developer).
type resource struct {
	team, env string
	adminOnly bool
	anyUser   bool
	minRole   access.Role
}

// resolver finds the team of the resource a request names. Not finding the resource is an
// error wrapping store.ErrNotFound.
type resolver func(s *Server, r *http.Request, rctx *chi.Context) (resource, error)

func open() policy                             { return policy{auth: authOpen} }
func anyUser() policy                          { return policy{auth: authAny} }
func serverAdmin() policy                      { return policy{auth: authServerAdmin} }
func team(role access.Role, f resolver) policy { return policy{auth: authTeam, role: role, find: f} }

// routeTable is every route of Handler, as "METHOD pattern" (chi's pattern; "*" for every
// method), with its policy. docs/api.md lists the same roles; TestRouteTable walks the
// router and fails for a route missing here.
var routeTable = map[string]policy{
	"* /*":                   open(), // the UI's files; the UI shows its login page on a 401
	"GET /healthz":           open(),
	"POST /hooks/{provider}": open(), // authenticated by the repo's webhook secret
	"* /metrics":             serverAdmin(),
	"* /v2/*":                team(access.Viewer, registryRepo), // pushes need developer: see registryRepo

	"GET /.well-known/openid-configuration": open(), // the workload identity issuer (identity.go)
	"GET /.well-known/jwks":                 open(),

	// The agent protocol (internal/execute/agent): agents carry their own tokens, which the
	// protocol's handler checks (401 without one). Its router is a chi.Mux, so chi reports
	// and finds each of its routes by its full pattern, never "/api/v1/agent/*": a mount
	// entry would match none of them and every agent request would be refused.
	"POST /api/v1/agent/claim":               open(),
	"POST /api/v1/agent/jobs/{id}/heartbeat": open(),
	"POST /api/v1/agent/jobs/{id}/progress":  open(),
	"POST /api/v1/agent/jobs/{id}/result":    open(),
	"POST /api/v1/agent/jobs/{id}/return":    open(),
	"GET /api/v1/agent/blobs/{digest}":       open(),
	"PUT /api/v1/agent/blobs/{digest}":       open(),
	// The Kubernetes executor's stage pods (internal/execute/kube), with the token of
	// their attempt, which the executor checks.
	"GET /api/v1/pod/workspace":      open(),
	"PUT /api/v1/pod/outputs/{kind}": open(),

	"POST /api/v1/login":              open(),
	"GET /api/v1/login/options":       open(), // how the UI may sign in
	"GET /api/v1/login/oidc":          open(), // SSO: to the identity provider
	"GET /api/v1/login/oidc/callback": open(), // SSO: back from it, checked by state, PKCE and nonce
	"POST /api/v1/logout":             anyUser(),
	"GET /api/v1/me":                  anyUser(),

	"GET /api/v1/users":                                  serverAdmin(),
	"POST /api/v1/users":                                 serverAdmin(),
	"PUT /api/v1/users/{name}/password":                  anyUser(), // one's own with the current password; anyone's for a server admin
	"DELETE /api/v1/users/{name}":                        serverAdmin(),
	"GET /api/v1/teams":                                  anyUser(),
	"POST /api/v1/teams":                                 serverAdmin(),
	"GET /api/v1/teams/{team}/members":                   team(access.Viewer, teamParam),
	"PUT /api/v1/teams/{team}/members/{user}":            team(access.Admin, teamParam),
	"DELETE /api/v1/teams/{team}/members/{user}":         team(access.Admin, teamParam),
	"GET /api/v1/teams/{team}/approvers":                 team(access.Viewer, teamParam),
	"PUT /api/v1/teams/{team}/approvers/{env}/{user}":    team(access.Admin, teamParam),
	"DELETE /api/v1/teams/{team}/approvers/{env}/{user}": team(access.Admin, teamParam),
	"GET /api/v1/tokens":                                 anyUser(),
	"POST /api/v1/tokens":                                anyUser(), // no more than the caller has: access.TokenCreate
	"DELETE /api/v1/tokens/{id}":                         anyUser(), // one's own (any, for a server admin)

	"GET /api/v1/triggers":            anyUser(),
	"GET /api/v1/triggers/{id}":       team(access.Viewer, triggerParam),
	"POST /api/v1/repos":              team(access.Developer, repoBody),
	"GET /api/v1/repos":               anyUser(),
	"POST /api/v1/runs":               team(access.Developer, runBody),
	"GET /api/v1/runs":                anyUser(),
	"GET /api/v1/runs/{id}":           team(access.Viewer, runParam),
	"GET /api/v1/runs/{id}/events":    team(access.Viewer, runParam),
	"GET /api/v1/runs/{id}/logs":      team(access.Viewer, runParam),
	"GET /api/v1/runs/{id}/findings":  team(access.Viewer, runParam),
	"POST /api/v1/runs/{id}/cancel":   team(access.Developer, runParam),
	"GET /api/v1/teams/{team}/quota":  team(access.Viewer, teamParam),
	"PUT /api/v1/teams/{team}/quota":  team(access.Admin, teamParam),
	"GET /api/v1/logs/search":         anyUser(),
	"GET /api/v1/insights/runs":       anyUser(),
	"GET /api/v1/insights/alerts":     anyUser(),
	"GET /api/v1/insights/tests":      anyUser(),
	"GET /api/v1/insights/dora":       team(access.Viewer, envQuery),
	"GET /api/v1/insights/cost":       anyUser(),
	"GET /api/v1/keys":                anyUser(), // public keys
	"POST /api/v1/pipelines/validate": anyUser(),

	"GET /api/v1/environments":                   anyUser(),
	"GET /api/v1/environments/{env}":             team(access.Viewer, envParam),
	"GET /api/v1/environments/{env}/deployments": team(access.Viewer, envParam),
	"POST /api/v1/environments/{env}/rollback":   team(access.Developer, envParam),
	"GET /api/v1/deployments/{id}":               team(access.Viewer, deploymentParam),

	"GET /api/v1/freight":                 anyUser(),
	"GET /api/v1/freight/{id}":            team(access.Viewer, freightParam),
	"GET /api/v1/promotions":              anyUser(),
	"POST /api/v1/promotions":             team(access.Developer, freightBody),
	"GET /api/v1/promotions/{id}":         team(access.Viewer, promotionParam),
	"GET /api/v1/approvals":               anyUser(),
	"GET /api/v1/approvals/{id}":          team(access.Viewer, promotionParam),
	"POST /api/v1/approvals/{id}/approve": {auth: authTeam, approve: true, find: promotionParam},
	"POST /api/v1/approvals/{id}/reject":  {auth: authTeam, approve: true, find: promotionParam},
	"GET /api/v1/promotion/environments":  anyUser(), // the server's promotion config, no team's data

	"GET /api/v1/teams/{team}/secrets":           team(access.Developer, teamParam), // names only, never values
	"PUT /api/v1/teams/{team}/secrets/{name}":    team(access.Admin, teamParam),
	"DELETE /api/v1/teams/{team}/secrets/{name}": team(access.Admin, teamParam),
	"GET /api/v1/audit":                          serverAdmin(),

	"GET /api/v1/agents":           serverAdmin(),
	"POST /api/v1/agents":          serverAdmin(),
	"DELETE /api/v1/agents/{name}": serverAdmin(),
}

func policyFor(method, pattern string) (policy, bool) {
	// A mount answers at its own path too (/v2 and /v2/ for /v2/*).
	if _, ok := routeTable["* "+strings.TrimSuffix(pattern, "/")+"/*"]; ok && !strings.HasSuffix(pattern, "*") {
		pattern = strings.TrimSuffix(pattern, "/") + "/*"
	}
	if p, ok := routeTable[method+" "+pattern]; ok {
		return p, true
	}
	if method == http.MethodHead {
		if p, ok := routeTable["GET "+pattern]; ok {
			return p, true
		}
	}
	p, ok := routeTable["* "+pattern]
	return p, ok
}

func teamParam(_ *Server, _ *http.Request, rctx *chi.Context) (resource, error) {
	return resource{team: rctx.URLParam("team")}, nil
}

func (s *Server) repoTeam(r *http.Request, name string) (resource, error) {
	repo, err := s.cfg.Store.RepoGet(r.Context(), name)
	if err != nil {
		return resource{}, err
	}
	return resource{team: repo.Team}, nil
}

func (s *Server) runTeam(r *http.Request, id string) (resource, error) {
	sum, err := s.cfg.Store.RunGet(r.Context(), id)
	if err != nil {
		return resource{}, err
	}
	return resource{team: sum.Team}, nil
}

func runParam(s *Server, r *http.Request, rctx *chi.Context) (resource, error) {
	return s.runTeam(r, rctx.URLParam("id"))
}

func triggerParam(s *Server, r *http.Request, rctx *chi.Context) (resource, error) {
	ts, ok := s.triggerStore()
	if !ok {
		return resource{}, store.ErrNotFound
	}
	t, err := ts.TriggerGet(r.Context(), rctx.URLParam("id"))
	if err != nil {
		return resource{}, err
	}
	return s.repoTeam(r, t.Repo)
}

// peekBody reads a JSON body's fields and puts the body back for the handler.
func peekBody(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return errorf(http.StatusBadRequest, "reading the body: %v", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	if len(b) > maxBody {
		return errorf(http.StatusRequestEntityTooLarge, "request body is over %d bytes", maxBody)
	}
	_ = json.Unmarshal(b, v) // a body that is not JSON: the handler says what is wrong with it
	return nil
}

// repoBody: registering a repo needs developer in the team it names, and, when the repo is
// registered already, in the team that has it (a repo cannot be taken from another team).
func repoBody(s *Server, r *http.Request, _ *chi.Context) (resource, error) {
	var body struct {
		FullName string `json:"full_name"`
		Team     string `json:"team"`
	}
	if err := peekBody(r, &body); err != nil {
		return resource{}, err
	}
	if old, err := s.cfg.Store.RepoGet(r.Context(), body.FullName); err == nil && old.Team != body.Team {
		p := principal(r)
		if !p.Sees(old.Team) {
			return resource{}, errHidden
		}
		if p.Role(old.Team) < access.Developer {
			return resource{}, errForbidden
		}
	}
	if body.Team == "" {
		return resource{anyUser: true}, nil // the handler says the team is required
	}
	return resource{team: body.Team}, nil
}

func runBody(s *Server, r *http.Request, _ *chi.Context) (resource, error) {
	var body struct {
		Repo string `json:"repo"`
	}
	if err := peekBody(r, &body); err != nil {
		return resource{}, err
	}
	if body.Repo == "" {
		return resource{anyUser: true}, nil // the handler says what to send
	}
	return s.repoTeam(r, body.Repo)
}

// envTeam finds the team of an environment: that of the repo its latest deployment came
// from. An environment with no deployment yet belongs to no team: anyone may read it (there
// is nothing in it to read), only a server admin change it.
func (s *Server) envTeam(r *http.Request, env string) (resource, error) {
	if s.cfg.Deployments == nil {
		return resource{}, fmt.Errorf("environment %s: %w", env, store.ErrNotFound)
	}
	ds, err := s.cfg.Deployments.DeploymentList(r.Context(), store.DeploymentListParams{Environment: env, Limit: 20})
	if err != nil {
		return resource{}, err
	}
	for _, d := range ds {
		if d.Repo != "" {
			res, err := s.repoTeam(r, d.Repo)
			res.env = env
			return res, err
		}
	}
	return resource{env: env, anyUser: safeMethod(r.Method), adminOnly: true}, nil
}

func envParam(s *Server, r *http.Request, rctx *chi.Context) (resource, error) {
	return s.envTeam(r, rctx.URLParam("env"))
}

func envQuery(s *Server, r *http.Request, _ *chi.Context) (resource, error) {
	env := r.URL.Query().Get("environment")
	if env == "" {
		return resource{anyUser: true}, nil
	}
	return s.envTeam(r, env)
}

func deploymentParam(s *Server, r *http.Request, rctx *chi.Context) (resource, error) {
	if s.cfg.Deployments == nil {
		return resource{}, store.ErrNotFound
	}
	d, err := s.cfg.Deployments.DeploymentGet(r.Context(), rctx.URLParam("id"))
	if err != nil {
		return resource{}, err
	}
	if d.Repo == "" {
		return resource{adminOnly: true}, nil
	}
	return s.repoTeam(r, d.Repo)
}

func (s *Server) freightTeam(r *http.Request, idOrAlias string) (resource, error) {
	if s.cfg.Promote == nil {
		return resource{}, store.ErrNotFound
	}
	f, err := s.cfg.Promote.FreightGet(r.Context(), idOrAlias)
	if err != nil {
		return resource{}, err
	}
	return s.repoTeam(r, f.Repo)
}

func freightParam(s *Server, r *http.Request, rctx *chi.Context) (resource, error) {
	return s.freightTeam(r, rctx.URLParam("id"))
}

func freightBody(s *Server, r *http.Request, _ *chi.Context) (resource, error) {
	var body struct {
		Freight string `json:"freight"`
	}
	if err := peekBody(r, &body); err != nil {
		return resource{}, err
	}
	if body.Freight == "" {
		return resource{anyUser: true}, nil // the handler says what to send
	}
	return s.freightTeam(r, body.Freight)
}

// promotionParam: a promotion (and its approval) belongs to its freight's team; its
// environment is the one an approver must be able to approve into.
func promotionParam(s *Server, r *http.Request, rctx *chi.Context) (resource, error) {
	if s.cfg.Promote == nil {
		return resource{}, store.ErrNotFound
	}
	p, err := s.cfg.Promote.PromotionGet(r.Context(), rctx.URLParam("id"))
	if err != nil {
		return resource{}, err
	}
	res, err := s.freightTeam(r, p.Freight)
	res.env = p.Environment
	return res, err
}

// registryRepo: the registry's repositories are named TEAM/...: the first path segment is
// the team that owns it. Reading needs viewer, pushing or deleting developer. The version
// check (/v2/) needs only a valid token; the catalog lists every team's names and is for
// server admins.
func registryRepo(_ *Server, r *http.Request, _ *chi.Context) (resource, error) {
	rest := strings.Trim(strings.TrimPrefix(r.URL.Path, "/v2"), "/")
	if rest == "" {
		return resource{anyUser: true}, nil
	}
	if rest == "_catalog" {
		return resource{adminOnly: true}, nil
	}
	team, _, _ := strings.Cut(rest, "/")
	res := resource{team: team}
	if !safeMethod(r.Method) {
		res.minRole = access.Developer
	}
	return res, nil
}
