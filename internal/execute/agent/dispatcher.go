package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/store"
)

// Tokens finds the valid agent token of a hash (store.AgentToken.Hash).
type Tokens interface {
	AgentTokenFind(ctx context.Context, hash string) (store.AgentToken, error)
}

// DispatcherConfig configures a Dispatcher.
type DispatcherConfig struct {
	Tokens Tokens       // required
	Blobs  *cache.Blobs // required: where artifacts are stored by digest
	// Lease is how long a job stays an agent's without a heartbeat. Default: 10s. Keep it
	// below the servers' run lease (schedule.Config.LeaseTTL).
	Lease time.Duration
	// PollWait is how long a claim waits for a job before answering 204. Default: 25s.
	PollWait time.Duration
	// Logger defaults to slog.Default(); Now to time.Now.
	Logger *slog.Logger
	Now    func() time.Time
}

// Dispatcher hands jobs to agents: it is the executor of stages that run on agents, and
// the HTTP handler of the agent protocol. Run may be called concurrently.
type Dispatcher struct {
	cfg DispatcherConfig
	log *slog.Logger

	mu      sync.Mutex
	pending []*job          // not yet claimed, oldest first
	jobs    map[string]*job // every job of a Run in progress
	changed chan struct{}   // closed (and replaced) when a job is queued
	agents  map[string]*Seen
}

var _ execute.Executor = (*Dispatcher)(nil)

// Seen is an agent as the dispatcher last heard from it.
type Seen struct {
	Name     string            `json:"name"`
	Labels   map[string]string `json:"labels"`
	LastSeen time.Time         `json:"last_seen"`
	Running  int               `json:"running"`
}

type job struct {
	id   string
	spec execute.Job
	obs  execute.Observer

	// Guarded by Dispatcher.mu.
	agent    string
	deadline time.Time // the lease; zero while pending
	cancel   bool

	progress sync.Mutex // serialises progress requests: items apply in order
	acked    int64
	done     chan Outcome // the agent's result; buffered, sent once
	ended    bool         // guarded by progress
}

// NewDispatcher makes a dispatcher.
func NewDispatcher(cfg DispatcherConfig) (*Dispatcher, error) {
	if cfg.Tokens == nil || cfg.Blobs == nil {
		return nil, errors.New("agent: Tokens and Blobs are required")
	}
	if cfg.Lease == 0 {
		cfg.Lease = 10 * time.Second
	}
	if cfg.Lease < 20*time.Millisecond {
		return nil, fmt.Errorf("agent: lease %s is too short (want 20ms or more; 10s is the default)", cfg.Lease)
	}
	if cfg.PollWait == 0 {
		cfg.PollWait = 25 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Dispatcher{cfg: cfg, log: cfg.Logger, jobs: map[string]*job{}, changed: make(chan struct{}), agents: map[string]*Seen{}}, nil
}

// Run queues the job for an agent with its labels and waits for its result. A job whose
// agent stops heartbeating ends with an error wrapping execute.ErrLost. When ctx ends, the
// agent is told to cancel, and Run waits for it to report (or to lose its lease), so that
// a stage never runs on after Run returned.
func (d *Dispatcher) Run(ctx context.Context, spec execute.Job, obs execute.Observer) (execute.Result, error) {
	j := &job{id: uuid.NewString(), spec: spec, obs: obs, done: make(chan Outcome, 1)}
	d.mu.Lock()
	d.jobs[j.id] = j
	d.pending = append(d.pending, j)
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
	defer d.forget(j)

	tick := time.NewTicker(max(d.cfg.Lease/4, 5*time.Millisecond))
	defer tick.Stop()
	stop := ctx.Done()
	for {
		select {
		case out := <-j.done:
			if ctx.Err() != nil {
				return execute.Result{}, fmt.Errorf("agent: %w", ctx.Err())
			}
			return d.finish(j, out)
		case <-stop:
			stop = nil
			d.mu.Lock()
			j.cancel = true
			claimed := j.agent != ""
			d.mu.Unlock()
			if !claimed {
				return execute.Result{}, fmt.Errorf("agent: %w", ctx.Err())
			}
		case <-tick.C:
			d.mu.Lock()
			agent, deadline := j.agent, j.deadline
			d.mu.Unlock()
			if agent != "" && d.cfg.Now().After(deadline) {
				if ctx.Err() != nil {
					return execute.Result{}, fmt.Errorf("agent: %w", ctx.Err())
				}
				return execute.Result{}, fmt.Errorf("agent %s sent no heartbeat for %s: %w", agent, d.cfg.Lease, execute.ErrLost)
			}
		}
	}
}

// finish checks an agent's outcome: every progress item arrived, every artifact uploaded.
func (d *Dispatcher) finish(j *job, out Outcome) (execute.Result, error) {
	j.progress.Lock()
	acked := j.acked
	j.progress.Unlock()
	if out.LastSeq != acked {
		return execute.Result{}, fmt.Errorf("agent: the job's progress has a gap: the agent sent %d items, the server has %d", out.LastSeq, acked)
	}
	if out.Error != "" {
		return out.Result, fmt.Errorf("agent: %s", out.Error)
	}
	for _, a := range out.Result.Artifacts {
		if a.Digest == "" {
			continue
		}
		p, err := d.cfg.Blobs.Path(a.Digest)
		if err == nil {
			_, err = os.Stat(p)
		}
		if err != nil {
			return execute.Result{}, fmt.Errorf("agent: artifact %s (%s) was not uploaded: %w", a.Path, a.Digest, err)
		}
	}
	return out.Result, nil
}

func (d *Dispatcher) forget(j *job) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.jobs, j.id)
	if i := slices.Index(d.pending, j); i >= 0 {
		d.pending = slices.Delete(d.pending, i, i+1)
	}
	if a := d.agents[j.agent]; a != nil && a.Running > 0 {
		a.Running--
	}
}

// Agents lists the agents heard from, by name.
func (d *Dispatcher) Agents() []Seen {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Seen, 0, len(d.agents))
	for _, name := range slices.Sorted(maps.Keys(d.agents)) {
		out = append(out, *d.agents[name])
	}
	return out
}

// Handler serves the agent protocol; mount it at /api/v1/agent.
func (d *Dispatcher) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(d.auth)
	r.Post("/claim", d.claim)
	r.Post("/jobs/{id}/heartbeat", d.heartbeat)
	r.Post("/jobs/{id}/progress", d.progressHandler)
	r.Post("/jobs/{id}/result", d.result)
	r.Post("/jobs/{id}/return", d.giveBack)
	r.Get("/blobs/{digest}", d.blobGet)
	r.Put("/blobs/{digest}", d.blobPut)
	return r
}

type agentKey struct{}

// auth admits requests with a valid agent token and names the agent in the context.
func (d *Dispatcher) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		// RFC 9110: a 401 names the scheme it wants.
		w.Header().Set("WWW-Authenticate", `Bearer realm="paved agents"`)
		if !ok || tok == "" {
			reply(w, http.StatusUnauthorized, map[string]string{"error": "agent token required: Authorization: Bearer TOKEN (paved agent token create NAME)"})
			return
		}
		t, err := d.cfg.Tokens.AgentTokenFind(r.Context(), HashToken(tok))
		if errors.Is(err, store.ErrNotFound) {
			reply(w, http.StatusUnauthorized, map[string]string{"error": "unknown or revoked agent token"})
			return
		}
		if err != nil {
			d.log.Error("agent: check token", "err", err)
			reply(w, http.StatusServiceUnavailable, map[string]string{"error": "cannot check the token now; retry"})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), agentKey{}, t.Name)))
	})
}

func agentName(r *http.Request) string { s, _ := r.Context().Value(agentKey{}).(string); return s }

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func decodeBody(r *http.Request, v any) error {
	return json.NewDecoder(io.LimitReader(r.Body, 64<<20)).Decode(v)
}

// matches: the agent has every label the job asks for.
func matches(want, have map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func (d *Dispatcher) claim(w http.ResponseWriter, r *http.Request) {
	var c Claim
	if err := decodeBody(r, &c); err != nil {
		reply(w, http.StatusBadRequest, map[string]string{"error": "bad claim: " + err.Error()})
		return
	}
	name := agentName(r)
	wait := time.NewTimer(d.cfg.PollWait)
	defer wait.Stop()
	for {
		d.mu.Lock()
		seen := d.agents[name]
		if seen == nil {
			seen = &Seen{Name: name}
			d.agents[name] = seen
		}
		seen.Labels, seen.LastSeen = c.Labels, d.cfg.Now().UTC()
		for i, j := range d.pending {
			if j.cancel || !matches(j.spec.Labels, c.Labels) {
				continue
			}
			d.pending = slices.Delete(d.pending, i, i+1)
			j.agent, j.deadline = name, d.cfg.Now().Add(d.cfg.Lease)
			seen.Running++
			d.mu.Unlock()
			d.log.Debug("agent: job claimed", "agent", name, "run", j.spec.RunID, "stage", j.spec.Stage, "attempt", j.spec.Attempt)
			reply(w, http.StatusOK, Assignment{ID: j.id, LeaseMS: ms(d.cfg.Lease), Job: j.spec})
			return
		}
		changed := d.changed
		d.mu.Unlock()
		select {
		case <-changed:
		case <-wait.C:
			w.WriteHeader(http.StatusNoContent)
			return
		case <-r.Context().Done():
			return
		}
	}
}

// held returns the job id names if the requesting agent holds it, and renews its lease.
func (d *Dispatcher) held(w http.ResponseWriter, r *http.Request) (*job, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	j := d.jobs[chi.URLParam(r, "id")]
	if j == nil || j.agent != agentName(r) {
		reply(w, http.StatusGone, map[string]string{"error": "the job is not yours any more: kill it"})
		return nil, false
	}
	j.deadline = d.cfg.Now().Add(d.cfg.Lease)
	if a := d.agents[j.agent]; a != nil {
		a.LastSeen = d.cfg.Now().UTC()
	}
	return j, true
}

// giveBack takes back a job its agent has no room for (it polls several servers) and
// queues it first again.
func (d *Dispatcher) giveBack(w http.ResponseWriter, r *http.Request) {
	if _, ok := d.held(w, r); !ok {
		return
	}
	d.mu.Lock()
	j := d.jobs[chi.URLParam(r, "id")]
	if j != nil && j.agent == agentName(r) {
		if a := d.agents[j.agent]; a != nil && a.Running > 0 {
			a.Running--
		}
		j.agent, j.deadline = "", time.Time{}
		d.pending = slices.Insert(d.pending, 0, j)
		close(d.changed)
		d.changed = make(chan struct{})
	}
	d.mu.Unlock()
	reply(w, http.StatusOK, map[string]string{"status": "queued again"})
}

func (d *Dispatcher) heartbeat(w http.ResponseWriter, r *http.Request) {
	j, ok := d.held(w, r)
	if !ok {
		return
	}
	d.mu.Lock()
	cancel := j.cancel
	d.mu.Unlock()
	reply(w, http.StatusOK, Heartbeat{Cancel: cancel})
}

func (d *Dispatcher) progressHandler(w http.ResponseWriter, r *http.Request) {
	var req ProgressRequest
	if err := decodeBody(r, &req); err != nil {
		reply(w, http.StatusBadRequest, map[string]string{"error": "bad progress: " + err.Error()})
		return
	}
	j, ok := d.held(w, r)
	if !ok {
		return
	}
	j.progress.Lock()
	defer j.progress.Unlock()
	if j.ended {
		reply(w, http.StatusGone, map[string]string{"error": "the job ended"})
		return
	}
	for _, it := range req.Items {
		if it.Seq <= j.acked {
			continue // a retry of what arrived
		}
		if it.Seq != j.acked+1 {
			reply(w, http.StatusConflict, ProgressReply{Acked: j.acked}) // a gap: send again from acked+1
			return
		}
		if err := d.apply(j, it); err != nil {
			reply(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		j.acked = it.Seq
	}
	reply(w, http.StatusOK, ProgressReply{Acked: j.acked})
}

func (d *Dispatcher) apply(j *job, it Item) error {
	if it.Kind != KindCache && (it.Step < 0 || it.Step >= len(j.spec.Steps)) {
		return fmt.Errorf("progress item %d: step %d out of range", it.Seq, it.Step)
	}
	switch it.Kind {
	case KindStepStarted:
		j.obs.StepStarted(it.Step)
	case KindOutput:
		j.obs.Output(it.Step, it.Data)
	case KindStepFinished:
		j.obs.StepFinished(it.Step, it.ExitCode, time.Duration(it.TookMS)*time.Millisecond)
	case KindCache:
		if it.Cache == nil || it.Cache.Index < 0 || it.Cache.Index >= len(j.spec.Caches) {
			return fmt.Errorf("progress item %d: cache report out of range", it.Seq)
		}
		j.obs.Cache(*it.Cache)
	default:
		return fmt.Errorf("progress item %d: unknown kind %q", it.Seq, it.Kind)
	}
	return nil
}

func (d *Dispatcher) result(w http.ResponseWriter, r *http.Request) {
	var out Outcome
	if err := decodeBody(r, &out); err != nil {
		reply(w, http.StatusBadRequest, map[string]string{"error": "bad result: " + err.Error()})
		return
	}
	j, ok := d.held(w, r)
	if !ok {
		return
	}
	j.progress.Lock()
	if !j.ended {
		j.ended = true
		j.done <- out
	}
	j.progress.Unlock()
	reply(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (d *Dispatcher) blobGet(w http.ResponseWriter, r *http.Request) {
	f, err := d.cfg.Blobs.Open(chi.URLParam(r, "digest"))
	if err != nil {
		reply(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = io.Copy(w, f)
}

func (d *Dispatcher) blobPut(w http.ResponseWriter, r *http.Request) {
	want := chi.URLParam(r, "digest")
	if _, err := cache.ParseDigest(want); err != nil {
		reply(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	got, _, err := d.cfg.Blobs.Put(r.Body)
	if err != nil {
		reply(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	if got != want {
		reply(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("the body's digest is %s, not %s", got, want)})
		return
	}
	reply(w, http.StatusCreated, map[string]string{"digest": got})
}
