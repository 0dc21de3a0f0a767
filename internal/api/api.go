// Package api is paved's HTTP API: JSON over HTTP, live streams as server-sent events. It is
// the only place where domain errors become HTTP statuses. docs/api.md documents every route.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/paved/paved/internal/access"
	"github.com/paved/paved/internal/insight"
	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/schedule"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/trigger"
	"github.com/paved/paved/internal/trigger/inbox"
	"github.com/paved/paved/web"
)

// Store is what the API reads and writes directly.
type Store interface {
	RepoPut(ctx context.Context, r trigger.Repo) error
	RepoGet(ctx context.Context, fullName string) (trigger.Repo, error)
	RepoList(ctx context.Context) ([]trigger.Repo, error)
	RunGet(ctx context.Context, id string) (run.Summary, error)
	RunList(ctx context.Context, p store.RunListParams) ([]run.Summary, error)
	EventList(ctx context.Context, p store.EventListParams) ([]run.Event, error)
	LogList(ctx context.Context, p store.LogListParams) ([]run.LogLine, error)
	LogSearch(ctx context.Context, p store.LogSearchParams) ([]run.LogLine, error)
	// TeamQuotaPut keeps a quota set through the API so that it outlives a restart.
	TeamQuotaPut(ctx context.Context, team string, limit int) error
}

// Scheduler is what the API asks of the scheduler.
type Scheduler interface {
	Create(ctx context.Context, p schedule.CreateParams) (string, error)
	Cancel(ctx context.Context, id, reason string) error
	// Waiting says why each stage of an active run that has not started waits.
	Waiting(runID string) map[string]schedule.Waiting
	TeamQuota(team string) schedule.Quota
	SetTeamQuota(team string, limit int) error
}

// Config wires the API to the rest of paved.
type Config struct {
	// Access authenticates every request but those of open routes (routes.go) and says what
	// the caller may do. Required.
	Access    *access.Service
	Store     Store
	Scheduler Scheduler
	Git       *trigger.Git
	Hub       *Hub
	// PipelineFile is the pipeline's path in a repository. Default: .paved.yml.
	PipelineFile string
	// Compile options (the stage kinds this build runs).
	Compile pipeline.Options
	Logger  *slog.Logger // default slog.Default()
	// Registry serves the OCI distribution API at /v2/ (internal/cache/oci). Default nil: no registry.
	Registry http.Handler
	// Launcher starts manual runs (POST /api/v1/runs). Default: one over Git, Scheduler,
	// PipelineFile and Compile.
	Launcher *inbox.Launcher
	// Inbox takes webhook triggers at /hooks/{provider}. Default nil: no webhook routes.
	Inbox *inbox.Inbox
	// Metrics serves Prometheus metrics at /metrics. Default nil: no /metrics.
	Metrics http.Handler
	// OnHook is told how each webhook delivery was answered (provider, status code) and how
	// long the answer took, for the ingestion metrics. Default: nothing.
	OnHook func(provider string, status int, took time.Duration)
	// Alerts lists the alerts firing now (GET /api/v1/insights/alerts). Default nil: none.
	Alerts interface{ Firing() []insight.Alert }
	// CPUHourPrice prices CPU time in GET /api/v1/insights/cost. Default 0:
	// insight.DefaultCPUHourPrice.
	CPUHourPrice float64
	// Keys lists the signing keys at GET /api/v1/keys. Default nil: that route answers 404.
	Keys KeyLister
	// Environments and Deployments serve /api/v1/environments and /api/v1/deployments
	// (environments.go). Default nil: no such routes.
	Environments Environments
	Deployments  Deployments
	// Promote serves /api/v1/freight, /promotions and /approvals (promote.go). Default nil:
	// no such routes.
	Promote Promoter
	// Secrets serves /api/v1/teams/{team}/secrets (secrets.go). Default nil: no such routes.
	Secrets Secrets
	// Audit serves GET /api/v1/audit and records the actions of handlers (audit.go).
	// Default nil: no such route, nothing recorded.
	Audit AuditLog
	// Egress checks the http(s) clone URLs of registered repos (limits.go). Default nil:
	// none is checked.
	Egress Egress
	// Identity serves /.well-known/openid-configuration and /.well-known/jwks, public
	// (identity.go). Default nil: no such routes.
	Identity Issuer
	// AgentTokens serves /api/v1/agents (agents.go), Agents the agent protocol at
	// /api/v1/agent/ and the list of agents connected. Default nil: no such routes.
	AgentTokens AgentTokens
	Agents      Agents
	// Pods serves /api/v1/pod/, where the Kubernetes executor's stage pods fetch their
	// workspace and send their artifacts and reports, with tokens of their own
	// (internal/execute/kube). Default nil: no such routes.
	Pods http.Handler
}

// Server serves the API.
type Server struct {
	cfg Config
	log *slog.Logger
}

// New checks the config and makes a server.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Scheduler == nil || cfg.Git == nil || cfg.Hub == nil || cfg.Access == nil {
		return nil, errors.New("api: Store, Scheduler, Git, Hub and Access are required")
	}
	if cfg.PipelineFile == "" {
		cfg.PipelineFile = ".paved.yml"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Launcher == nil {
		cfg.Launcher = &inbox.Launcher{Git: cfg.Git, Scheduler: cfg.Scheduler, PipelineFile: cfg.PipelineFile, Compile: cfg.Compile}
	}
	return &Server{cfg: cfg, log: cfg.Logger}, nil
}

// Handler returns the HTTP routes, each behind the access guard (auth.go).
func (s *Server) Handler() http.Handler {
	return s.guard(s.routes())
}

// routes is the router without the guard. Every route it has needs an entry in routeTable.
func (s *Server) routes() *chi.Mux {
	r := chi.NewRouter()
	if s.cfg.Registry != nil {
		r.Mount("/v2", s.cfg.Registry) // the registry sees the full /v2/... path
	}
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	if s.cfg.Inbox != nil {
		r.Post("/hooks/{provider}", s.timedHook)
	}
	if s.cfg.Metrics != nil {
		r.Handle("/metrics", s.cfg.Metrics)
	}
	s.identityRoutes(r)
	if s.cfg.Agents != nil {
		// Beside /api/v1, not in it: agents carry their own tokens, not a user's.
		r.Mount("/api/v1/agent", s.cfg.Agents.Handler())
	}
	if s.cfg.Pods != nil {
		// Beside /api/v1 too: a stage pod's token opens its own attempt's routes only.
		r.Mount("/api/v1/pod", s.cfg.Pods)
	}
	r.Route("/api/v1", func(r chi.Router) {
		s.accessRoutes(r)
		r.Get("/triggers", s.triggerList)
		r.Get("/triggers/{id}", s.triggerGet)
		r.Post("/repos", s.repoPut)
		r.Get("/repos", s.repoList)
		r.Post("/runs", s.runCreate)
		r.Get("/runs", s.runList)
		r.Get("/runs/{id}", s.runGet)
		r.Get("/runs/{id}/events", s.runEvents)
		r.Get("/runs/{id}/logs", s.runLogs)
		r.Get("/runs/{id}/findings", s.runFindings)
		r.Post("/runs/{id}/cancel", s.runCancel)
		r.Get("/teams/{team}/quota", s.quotaGet)
		r.Put("/teams/{team}/quota", s.quotaPut)
		r.Get("/logs/search", s.logSearch)
		r.Get("/insights/runs", s.insightRuns)
		r.Get("/insights/alerts", s.insightAlerts)
		r.Get("/insights/tests", s.insightTests)
		r.Get("/insights/dora", s.insightDORA)
		r.Get("/insights/cost", s.insightCost)
		r.Get("/keys", s.keyList)
		r.Post("/pipelines/validate", s.pipelineValidate)
		s.environmentRoutes(r)
		s.promoteRoutes(r)
		s.secretRoutes(r)
		if s.cfg.Audit != nil {
			r.Get("/audit", s.auditList)
		}
		s.agentRoutes(r)
	})
	r.Handle("/*", web.Handler()) // the UI (web/), for every path the routes above do not take
	return r
}

// apiError is a failure with the status and message a client should see.
type apiError struct {
	status int
	msg    string
	detail any
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

// writeError maps domain errors to statuses. Anything unknown is a 500 whose detail is logged,
// not shown.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	var pl pipeline.ErrorList
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &pl):
		ae = &apiError{status: http.StatusUnprocessableEntity, msg: "the pipeline file is invalid", detail: errorStrings(pl)}
	case errors.Is(err, store.ErrEmptyQuery):
		ae = &apiError{status: http.StatusBadRequest, msg: store.ErrEmptyQuery.Error()}
	case errors.Is(err, access.ErrUnauthenticated):
		ae = &apiError{status: http.StatusUnauthorized, msg: err.Error()}
	case errors.Is(err, access.ErrInvalid):
		ae = &apiError{status: http.StatusBadRequest, msg: err.Error()}
	case errors.Is(err, access.ErrForbidden):
		ae = &apiError{status: http.StatusForbidden, msg: err.Error()}
	case errors.Is(err, access.ErrExists):
		ae = &apiError{status: http.StatusConflict, msg: err.Error()}
	case errors.Is(err, store.ErrNotFound), errors.Is(err, access.ErrNotFound):
		ae = &apiError{status: http.StatusNotFound, msg: err.Error()}
	case errors.Is(err, trigger.ErrInvalidRepo):
		ae = &apiError{status: http.StatusBadRequest, msg: err.Error()}
	case errors.Is(err, trigger.ErrUnknownRef), errors.Is(err, os.ErrNotExist):
		ae = &apiError{status: http.StatusUnprocessableEntity, msg: err.Error()}
	case errors.Is(err, schedule.ErrInvalidQuota):
		ae = &apiError{status: http.StatusBadRequest, msg: err.Error()}
	case errors.Is(err, schedule.ErrUnknownRun):
		ae = &apiError{status: http.StatusConflict, msg: "the run is not in progress"}
	default:
		s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		ae = &apiError{status: http.StatusInternalServerError, msg: "internal error; see the server log"}
	}
	body := map[string]any{"error": ae.msg}
	if ae.detail != nil {
		body["details"] = ae.detail
	}
	writeJSON(w, ae.status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// maxBody bounds JSON request bodies of the API (webhooks have their own, larger limit).
const maxBody = 1 << 20

func decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errorf(http.StatusRequestEntityTooLarge, "request body is over %d bytes", maxBody)
		}
		return errorf(http.StatusBadRequest, "request body is not valid JSON for this route: %v", err)
	}
	return nil
}

func stamp(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func errorStrings(l pipeline.ErrorList) []string {
	out := make([]string, len(l))
	for i, e := range l {
		out[i] = e.Error()
	}
	return out
}
