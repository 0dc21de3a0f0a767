package forge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paved/paved/internal/run"
)

// Config configures a Reporter.
type Config struct {
	// Forge returns the client to report a repository's runs with, or nil when nothing is
	// reported for it (no credential, a local repository). Called as updates are queued and
	// again as they are sent, so a credential fixed meanwhile is used. Required.
	Forge func(ctx context.Context, repo string) (Forge, error)
	// Events lists a run's events: its RunCreated after a restart, and its state when a
	// comment is composed. Required.
	Events func(ctx context.Context, runID string) ([]run.Event, error)
	// Comment composes the body of a finished pull request run's comment (the reporter adds
	// the marker). Default nil: no comments.
	Comment func(ctx context.Context, st *run.State) (string, error)
	// URL returns the server's external URL; a status links to URL/runs/ID. Required.
	URL func() string
	// Dir keeps the queued updates. Required.
	Dir string
	// RunOnly reports one status per run and none per stage. Default false: both.
	RunOnly bool
	// Backoff is the wait before the first retry, doubled at each next one up to
	// MaxBackoff; a longer Retry-After wins, up to MaxWait. Defaults: 2s, 5m, 15m.
	Backoff    time.Duration
	MaxBackoff time.Duration
	MaxWait    time.Duration
	// MaxAttempts is how many times an update is tried before it is dropped. Default 10.
	MaxAttempts int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (c *Config) validate() error {
	if c.Forge == nil || c.Events == nil || c.URL == nil || c.Dir == "" {
		return errors.New("forge: Forge, Events, URL and Dir are required")
	}
	if c.Backoff == 0 {
		c.Backoff = 2 * time.Second
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 5 * time.Minute
	}
	if c.MaxWait == 0 {
		c.MaxWait = 15 * time.Minute
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 10
	}
	if c.Backoff < 0 || c.MaxBackoff < c.Backoff || c.MaxAttempts < 1 {
		return fmt.Errorf("forge: backoff %s..%s and %d attempts: want 0 < backoff <= max backoff and at least one attempt",
			c.Backoff, c.MaxBackoff, c.MaxAttempts)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Reporter turns run events into forge updates and sends them, per run in order, from a
// queue on disk. Create it with NewReporter, Start it, give it every event with OnEvent,
// and Stop it: what was not sent yet is sent after the next Start.
type Reporter struct {
	cfg     Config
	q       queue
	log     *slog.Logger
	updates *prometheus.CounterVec

	mu      sync.Mutex
	seq     uint64
	pending []run.Event         // taken by OnEvent, not yet turned into jobs
	runs    map[string]*runInfo // runs seen, until they finished
	queues  map[string][]*job   // per run, in order
	workers map[string]bool     // runs whose queue a goroutine sends
	wake    chan struct{}
	ctx     context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

type runInfo struct {
	info    *run.Info
	running bool // the run's own status said running already
}

// NewReporter checks the config.
func NewReporter(cfg Config) (*Reporter, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Reporter{cfg: cfg, q: queue{dir: cfg.Dir}, log: cfg.Logger,
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paved_forge_updates_total",
			Help: "Commit statuses and pull request comments sent to forges, by kind and result (sent, retried, dropped).",
		}, []string{"kind", "result"}),
		runs: map[string]*runInfo{}, queues: map[string][]*job{}, workers: map[string]bool{}, wake: make(chan struct{}, 1)}, nil
}

// Describe and Collect make the reporter's counter a prometheus.Collector.
func (r *Reporter) Describe(ch chan<- *prometheus.Desc) { r.updates.Describe(ch) }
func (r *Reporter) Collect(ch chan<- prometheus.Metric) { r.updates.Collect(ch) }

// Start takes up the updates a previous process left queued and starts turning events
// into updates.
func (r *Reporter) Start(ctx context.Context) error {
	r.ctx, r.stop = context.WithCancel(context.WithoutCancel(ctx))
	left, errs := r.q.load()
	for _, err := range errs {
		r.log.Warn("forge update lost", "err", err)
	}
	r.mu.Lock()
	for id, jobs := range left {
		r.seq = max(r.seq, jobs[len(jobs)-1].Seq)
		r.queues[id] = jobs
		r.startWorkerLocked(id)
	}
	r.mu.Unlock()
	r.wg.Add(1)
	go r.dispatch()
	return nil
}

// Stop ends sending; queued updates stay on disk.
func (r *Reporter) Stop() {
	if r.stop != nil {
		r.stop()
		r.wg.Wait()
	}
}

// OnEvent takes a run event; it never blocks on the forge or the disk (schedule.Config.OnEvent).
func (r *Reporter) OnEvent(e run.Event) {
	switch e.Type {
	case run.RunCreated, run.StageQueued, run.StageStarted, run.StageFinished, run.RunFinished:
	default:
		return
	}
	r.mu.Lock()
	r.pending = append(r.pending, e)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Reporter) dispatch() {
	defer r.wg.Done()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-r.wake:
		}
		r.mu.Lock()
		events := r.pending
		r.pending = nil
		r.mu.Unlock()
		for _, e := range events {
			r.queueEvent(e)
		}
	}
}

// queueEvent turns one event into the updates it causes and queues them.
func (r *Reporter) queueEvent(e run.Event) {
	ri := r.runInfo(e)
	if ri == nil {
		return
	}
	if e.Type == run.RunFinished {
		r.mu.Lock()
		delete(r.runs, e.RunID)
		r.mu.Unlock()
	}
	info := ri.info
	f, err := r.cfg.Forge(r.ctx, info.Repo)
	if err != nil {
		r.log.Warn("no forge updates for this run", "run", e.RunID, "repo", info.Repo, "err", err)
		return
	}
	if f == nil || info.SHA == "" {
		return
	}
	name := "pipeline"
	if info.Pipeline != nil {
		name = info.Pipeline.Name
	}
	runCtx := "paved/" + name
	url := r.cfg.URL() + "/runs/" + e.RunID
	st := func(ctx, state, desc string) *job {
		return &job{RunID: e.RunID, Repo: info.Repo, Status: &Status{Repo: info.Repo, SHA: info.SHA, Context: ctx,
			State: state, Description: desc, URL: url}}
	}
	var jobs []*job
	stage := func(state, desc string) {
		if !r.cfg.RunOnly {
			jobs = append(jobs, st(runCtx+"/"+e.Stage, state, desc))
		}
	}
	switch e.Type {
	case run.RunCreated:
		jobs = append(jobs, st(runCtx, StatePending, "queued"))
	case run.StageQueued:
		stage(StatePending, "queued")
	case run.StageStarted:
		if !ri.running {
			ri.running = true
			jobs = append(jobs, st(runCtx, StateRunning, ""))
		}
		stage(StateRunning, "")
	case run.StageFinished:
		stage(stageState(e.Status), stageDescription(e))
	case run.RunFinished:
		state, desc := runState(run.Phase(e.Status), e.Reason)
		jobs = append(jobs, st(runCtx, state, desc))
		if info.Trigger.Kind == "pull_request" && info.Trigger.PRNumber > 0 && r.cfg.Comment != nil {
			jobs = append(jobs, &job{RunID: e.RunID, Repo: info.Repo, PR: info.Trigger.PRNumber})
		}
	}
	for _, j := range jobs {
		r.enqueue(j)
	}
}

// runInfo is what the reporter knows of an event's run: from its RunCreated, or after a
// restart from the store.
func (r *Reporter) runInfo(e run.Event) *runInfo {
	r.mu.Lock()
	ri := r.runs[e.RunID]
	if ri == nil && e.Type == run.RunCreated && e.Info != nil {
		ri = &runInfo{info: e.Info}
		r.runs[e.RunID] = ri
	}
	r.mu.Unlock()
	if ri != nil {
		return ri
	}
	evs, err := r.cfg.Events(r.ctx, e.RunID)
	if err != nil || len(evs) == 0 || evs[0].Info == nil {
		r.log.Warn("forge: cannot tell which commit a run is of; its update is not sent", "run", e.RunID, "event", e.Type, "err", err)
		return nil
	}
	ri = &runInfo{info: evs[0].Info}
	for _, ev := range evs {
		ri.running = ri.running || ev.Type == run.StageStarted
	}
	if e.Type != run.RunFinished {
		r.mu.Lock()
		r.runs[e.RunID] = ri
		r.mu.Unlock()
	}
	return ri
}

func (r *Reporter) enqueue(j *job) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	j.Seq = r.seq
	if err := r.q.put(j); err != nil {
		// Still sent from memory: only a restart before then loses it.
		r.log.Warn("forge update not kept on disk", "run", j.RunID, "err", err)
	}
	r.queues[j.RunID] = append(r.queues[j.RunID], j)
	r.startWorkerLocked(j.RunID)
}

// startWorkerLocked starts the run's worker unless it has one. The caller holds r.mu.
func (r *Reporter) startWorkerLocked(runID string) {
	if r.workers[runID] {
		return
	}
	r.workers[runID] = true
	r.wg.Add(1)
	go r.work(runID)
}

// work sends a run's queued updates in order, each until it is sent or dropped.
func (r *Reporter) work(runID string) {
	defer r.wg.Done()
	for {
		r.mu.Lock()
		if len(r.queues[runID]) == 0 {
			delete(r.queues, runID)
			delete(r.workers, runID)
			r.mu.Unlock()
			return
		}
		j := r.queues[runID][0]
		r.mu.Unlock()

		if wait := time.Until(j.NotAt); wait > 0 && !r.sleep(wait) {
			return
		}
		err := r.send(j)
		if r.ctx.Err() != nil {
			return // stopping: the job stays queued on disk
		}
		kind := "status"
		if j.Status == nil {
			kind = "comment"
		}
		switch {
		case err == nil:
			r.updates.WithLabelValues(kind, "sent").Inc()
		case Temporary(err) && j.Attempts+1 < r.cfg.MaxAttempts:
			j.Attempts++
			wait := r.backoff(j.Attempts, err)
			j.NotAt = time.Now().Add(wait)
			r.updates.WithLabelValues(kind, "retried").Inc()
			r.log.Info("forge update failed; retrying", "run", runID, "update", j.what(), "attempt", j.Attempts, "in", wait, "err", err)
			if perr := r.q.put(j); perr != nil {
				r.log.Warn("forge update's retry not kept on disk", "run", runID, "err", perr)
			}
			continue
		default:
			r.updates.WithLabelValues(kind, "dropped").Inc()
			r.log.Error("forge update dropped", "run", runID, "repo", j.Repo, "update", j.what(), "attempts", j.Attempts+1, "err", err)
		}
		r.mu.Lock() // with enqueue's: the run's directory is removed only when empty
		r.q.done(j)
		r.queues[runID] = r.queues[runID][1:]
		r.mu.Unlock()
	}
}

// backoff is the wait before attempt n+1: doubling from Backoff up to MaxBackoff, or the
// forge's Retry-After when longer (up to MaxWait).
func (r *Reporter) backoff(n int, err error) time.Duration {
	d := r.cfg.Backoff
	for i := 1; i < n && d < r.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, r.cfg.MaxBackoff)
	var h *HTTPError
	if errors.As(err, &h) && h.RetryAfter > d {
		d = min(h.RetryAfter, r.cfg.MaxWait)
	}
	return d
}

func (r *Reporter) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// send sends one update with the repository's current client.
func (r *Reporter) send(j *job) error {
	ctx, cancel := context.WithTimeout(r.ctx, 2*time.Minute)
	defer cancel()
	f, err := r.cfg.Forge(ctx, j.Repo)
	if err != nil {
		return fmt.Errorf("forge: client for %s: %w", j.Repo, err)
	}
	if f == nil {
		return nil // reporting was turned off for the repository meanwhile
	}
	if j.Status != nil {
		return f.SetStatus(ctx, *j.Status)
	}
	evs, err := r.cfg.Events(ctx, j.RunID)
	if err != nil {
		return fmt.Errorf("forge: events of run %s: %w", j.RunID, err)
	}
	st, err := run.Fold(evs)
	if err != nil {
		return fmt.Errorf("forge: run %s: %w", j.RunID, err)
	}
	body, err := r.cfg.Comment(ctx, st)
	if err != nil {
		return fmt.Errorf("forge: compose the comment of run %s: %w", j.RunID, err)
	}
	m := Marker(st.Info)
	return f.UpsertComment(ctx, Comment{Repo: j.Repo, PR: j.PR, Marker: m, Body: m + "\n" + body})
}

// Marker is the hidden line that tells paved's comment on a pull request apart: one per
// pipeline, so two pipelines of a repository keep a comment each.
func Marker(info *run.Info) string {
	name := "pipeline"
	if info != nil && info.Pipeline != nil {
		name = info.Pipeline.Name
	}
	return "<!-- paved:pr-comment pipeline=" + name + " -->"
}

// stageState maps a finished stage's status.
func stageState(status string) string {
	switch status {
	case run.StatusSucceeded:
		return StateSuccess
	case run.StatusSkipped:
		return StateSkipped
	case run.StatusCancelled:
		return StateCancelled
	default:
		return StateFailure
	}
}

func stageDescription(e run.Event) string {
	if e.Reason != "" {
		return e.Reason
	}
	return e.Status
}

// runState maps a run's final phase.
func runState(p run.Phase, reason string) (string, string) {
	switch p {
	case run.Succeeded:
		return StateSuccess, "succeeded"
	case run.Cancelled:
		return StateCancelled, reason
	case run.RolledBack:
		return StateFailure, "rolled back: " + reason
	default:
		return StateFailure, reason
	}
}
