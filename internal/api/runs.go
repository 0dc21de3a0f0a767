package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/paved/paved/internal/audit"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/schedule"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/trigger"
	"github.com/paved/paved/internal/trigger/inbox"
)

func (s *Server) repoPut(w http.ResponseWriter, r *http.Request) {
	var repo trigger.Repo
	if err := decode(w, r, &repo); err != nil {
		s.writeError(w, r, err)
		return
	}
	if repo.Provider == "" {
		repo.Provider = "local"
	}
	if err := repo.Validate(); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.checkEgress(r, repo.CloneURL); err != nil {
		s.writeError(w, r, err)
		return
	}
	repo.CreatedAt = time.Now().UTC()
	// The API never returns the secret, so a client that re-registers what it read sends
	// none: keep the one we have rather than wipe it.
	if repo.WebhookSecret == "" {
		if old, err := s.cfg.Store.RepoGet(r.Context(), repo.FullName); err == nil {
			repo.WebhookSecret = old.WebhookSecret
		}
	}
	if err := s.cfg.Store.RepoPut(r.Context(), repo); err != nil {
		s.writeError(w, r, err)
		return
	}
	saved, err := s.cfg.Store.RepoGet(r.Context(), repo.FullName)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	saved.WebhookSecret, saved.CloneURL = "", trigger.RedactURLs(saved.CloneURL)
	writeJSON(w, http.StatusCreated, saved)
}

func (s *Server) repoList(w http.ResponseWriter, r *http.Request) {
	repos, err := s.store(r).RepoList(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for i := range repos {
		repos[i].WebhookSecret, repos[i].CloneURL = "", trigger.RedactURLs(repos[i].CloneURL)
	}
	writeJSON(w, http.StatusOK, map[string]any{"repos": repos})
}

// runCreate starts a manual run of a registered repo at a ref.
func (s *Server) runCreate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Repo string `json:"repo"`
		Ref  string `json:"ref"`
		// Hotfix puts the run in the hotfix priority class whatever its branch.
		Hotfix bool `json:"hotfix"`
	}
	if err := decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Repo == "" {
		s.writeError(w, r, errorf(http.StatusBadRequest, `"repo" is required: the full_name of a registered repo`))
		return
	}
	repo, err := s.cfg.Store.RepoGet(r.Context(), req.Repo)
	if errors.Is(err, store.ErrNotFound) {
		s.writeError(w, r, errorf(http.StatusNotFound, "repo %q is not registered; register it with POST /api/v1/repos", req.Repo))
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The same path as a webhook's run: resolve, read and compile the pipeline, create.
	id, sha, err := s.cfg.Launcher.ManualRun(r.Context(), inbox.ManualParams{Repo: repo, Ref: req.Ref, Hotfix: req.Hotfix})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Hotfix {
		// The hotfix lane jumps the queue: who took it is audited.
		if err := s.auditRecord(r, audit.Entry{Action: audit.ActionHotfix, Team: repo.Team, Target: id,
			Details: map[string]any{"repo": repo.FullName, "ref": req.Ref, "sha": sha}}); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": id, "sha": sha})
}

func (s *Server) runList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			s.writeError(w, r, errorf(http.StatusBadRequest, "limit %q must be a positive number", v))
			return
		}
		limit = n
	}
	runs, err := s.store(r).RunList(r.Context(), store.RunListParams{
		Repo: q.Get("repo"), Team: q.Get("team"), Phase: run.Phase(strings.ToUpper(q.Get("phase"))), Limit: limit,
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if runs == nil {
		runs = []run.Summary{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": runs})
}

// runView is a run as the API shows it: the fold of its events.
type runView struct {
	run.Summary
	Priority        string      `json:"priority,omitempty"` // the run's priority class
	Group           string      `json:"group,omitempty"`    // its concurrency group, expanded
	Reason          string      `json:"reason,omitempty"`
	CancelRequested bool        `json:"cancel_requested,omitempty"`
	Stages          []stageView `json:"stages"`
	// Artifacts are every stage's, in stage order: what a deployment of this run would take.
	Artifacts []artifactView `json:"artifacts,omitempty"`
}

// artifactView is one artifact of the run, named by the stage that stored it.
type artifactView struct {
	Stage string `json:"stage"`
	run.Artifact
}

type stageView struct {
	Name       string     `json:"name"`
	Status     string     `json:"status"`
	Phase      string     `json:"phase"`
	Needs      []string   `json:"needs"`
	Attempt    int        `json:"attempt"`
	QueuedAt   *time.Time `json:"queued_at,omitempty"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	DurationMS int64      `json:"duration_ms,omitempty"`
	// QueueWaitMS is how long the current attempt was queued before it started.
	QueueWaitMS *int64 `json:"queue_wait_ms,omitempty"`
	// Waiting says why a pending or queued stage has not started, and its queue position.
	Waiting  *schedule.Waiting `json:"waiting,omitempty"`
	Step     int               `json:"step,omitempty"`
	StepName string            `json:"step_name,omitempty"`
	ExitCode *int              `json:"exit_code,omitempty"`
	Reason   string            `json:"reason,omitempty"`
	Sandbox  string            `json:"sandbox,omitempty"`
	Caches   []cacheView       `json:"caches,omitempty"`
	// Artifacts are what the current attempt stored, sorted by path.
	Artifacts []run.Artifact `json:"artifacts,omitempty"`
}

// cacheView is one dependency cache restore or save of the stage's current attempt.
type cacheView struct {
	Op         string `json:"op"` // restore or save
	DurationMS int64  `json:"duration_ms"`
	run.Cache
}

func (s *Server) fold(r *http.Request, id string) (*run.State, error) {
	events, err := s.cfg.Store.EventList(r.Context(), store.EventListParams{RunID: id})
	if err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("run %s: %w", id, store.ErrNotFound)
	}
	return run.Fold(events)
}

func (s *Server) runGet(w http.ResponseWriter, r *http.Request) {
	st, err := s.fold(r, chi.URLParam(r, "id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	v := runView{Summary: st.Summary(), Priority: st.Info.Priority, Group: st.Info.Group,
		Reason: st.Reason, CancelRequested: st.CancelRequested, Stages: []stageView{}}
	var waiting map[string]schedule.Waiting
	if !st.Done() {
		waiting = s.cfg.Scheduler.Waiting(st.ID)
	}
	for _, ss := range st.Stages {
		sv := stageView{
			Name: ss.Name(), Status: ss.Status, Phase: ss.Def.Phase, Needs: ss.Def.Needs, Attempt: ss.Attempt,
			QueuedAt: stamp(ss.QueuedAt), StartedAt: stamp(ss.StartedAt), FinishedAt: stamp(ss.FinishedAt),
			Step: ss.Step, StepName: ss.StepName, ExitCode: ss.ExitCode, Reason: ss.Reason, Sandbox: ss.Sandbox,
			Artifacts: ss.Artifacts,
		}
		for _, a := range ss.Artifacts {
			v.Artifacts = append(v.Artifacts, artifactView{Stage: ss.Name(), Artifact: a})
		}
		if sv.Needs == nil {
			sv.Needs = []string{}
		}
		for _, c := range ss.Caches {
			sv.Caches = append(sv.Caches, cacheView{Op: c.Op, DurationMS: c.DurationMS, Cache: c.Cache})
		}
		if !ss.StartedAt.IsZero() && !ss.FinishedAt.IsZero() {
			sv.DurationMS = ss.FinishedAt.Sub(ss.StartedAt).Milliseconds()
		}
		if !ss.StartedAt.IsZero() && !ss.QueuedAt.IsZero() {
			ms := ss.StartedAt.Sub(ss.QueuedAt).Milliseconds()
			sv.QueueWaitMS = &ms
		}
		if w, ok := waiting[ss.Name()]; ok && (ss.Status == run.StatusPending || ss.Status == run.StatusQueued) {
			sv.Waiting = &w
		}
		v.Stages = append(v.Stages, sv)
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) runCancel(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	if _, err := s.cfg.Store.RunGet(r.Context(), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.cfg.Scheduler.Cancel(r.Context(), id, "cancelled through the API"); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"id": id, "status": "cancel requested"})
}

func (s *Server) quotaGet(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.cfg.Scheduler.TeamQuota(chi.URLParam(r, "team")))
}

// quotaPut sets a team's limit of running stages. It is kept in the store first, so that a
// quota the scheduler applies is never one a restart forgets.
func (s *Server) quotaPut(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Limit *int `json:"limit"`
	}
	if err := decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Limit == nil {
		s.writeError(w, r, errorf(http.StatusBadRequest, `"limit" is required: running stages allowed at once, 0 for no limit`))
		return
	}
	team := chi.URLParam(r, "team")
	if *req.Limit < 0 {
		s.writeError(w, r, schedule.ErrInvalidQuota)
		return
	}
	if err := s.cfg.Store.TeamQuotaPut(r.Context(), team, *req.Limit); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.cfg.Scheduler.SetTeamQuota(team, *req.Limit); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.auditRecord(r, audit.Entry{Action: audit.ActionPolicyChange, Team: team, Target: "quota",
		Details: map[string]any{"limit": *req.Limit}}); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.cfg.Scheduler.TeamQuota(team))
}
