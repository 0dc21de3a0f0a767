// Package schedule drives runs: it appends what run.Next decides, keeps a queue of ready
// stages, hands them to an executor up to a capacity, and records what the executor reports
// (steps, logs, results) as events. It holds no state of its own that the event log does not
// also hold: after a crash, Start rebuilds every unfinished run from its events, marks the
// stages whose process died as interrupted and runs them again.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// Store is what the scheduler needs of a store.
type Store interface {
	EventAppend(ctx context.Context, p store.EventAppendParams) error
	EventList(ctx context.Context, p store.EventListParams) ([]run.Event, error)
	RunList(ctx context.Context, p store.RunListParams) ([]run.Summary, error)
	LogAppend(ctx context.Context, lines []run.LogLine) error
	LogList(ctx context.Context, p store.LogListParams) ([]run.LogLine, error)
}

// Config configures a Scheduler.
type Config struct {
	// Capacity is how many stages run at once. Default: 4.
	Capacity int
	// TeamQuotas limit how many stages of a team (run.Info.Team) run at once; a team not
	// named gets DefaultTeamQuota. 0 means no limit but Capacity. Default: none.
	TeamQuotas       map[string]int
	DefaultTeamQuota int
	// HotfixBranches are globs (path.Match) of branches whose runs are in the hotfix class.
	// Default: hotfix/*.
	HotfixBranches []string
	// OnStageStart is called as a stage attempt starts, with how long it was queued.
	// Default: none.
	OnStageStart func(info *run.Info, stage string, queueWait time.Duration)
	// Secrets resolves a secret named by a pipeline's env for a stage of a run. Default:
	// every secret is missing, and a stage that needs one fails saying so.
	Secrets func(ctx context.Context, p SecretParams) (string, error)
	// StageEnv adds environment variables to a stage attempt as it starts (a workload
	// identity token, internal/identity). Every value it returns is a secret: masked in the
	// run's logs like a resolved secret. An error fails the attempt before anything runs.
	// Default: none.
	StageEnv func(ctx context.Context, p StageEnvParams) (map[string]string, error)
	// Kinds run the built-in stage kinds, keyed by the name a pipeline uses ("gate/secrets",
	// "deploy"); pipelines should be compiled with these names as pipeline.Options.Kinds.
	// Default: none, and a stage of a kind not here fails saying so.
	Kinds map[string]Kind
	// Attest signs a succeeded stage's artifacts and records their provenance, from the
	// server, after the artifact store hashed them and before they are recorded; an error
	// fails the stage. Default: none (artifacts are not signed).
	Attest func(ctx context.Context, p AttestParams) error
	// Quarantine names the flaky tests whose failures do not fail a stage. Default: none
	// (every failure counts).
	Quarantine Quarantine
	// OnEvent is called after events are durably appended, in order per run. Default: none.
	OnEvent func(run.Event)
	// OnLog is called after log lines are stored, in order per stage. Default: none.
	OnLog func([]run.LogLine)
	// LogFlush bounds how long a log line waits before it is stored. Default: 100ms.
	LogFlush time.Duration
	// Leases, when set, make this scheduler one of many sharing the store (PostgreSQL):
	// it drives only the runs whose lease it holds, renews them every LeaseTTL/3, and
	// takes over runs whose lease expired. Default: none, this scheduler drives every run
	// (one server per store).
	Leases Leases
	// CancelRelay carries cancels to the server that drives a run. Default: none (a cancel
	// of a run another live server drives fails with ErrUnknownRun).
	CancelRelay CancelRelay
	// Owner names this scheduler in leases. Default: DefaultOwner().
	Owner string
	// LeaseTTL is how long a run's lease lasts without renewal: how soon the runs of a dead
	// server move to the others. Default: 15s.
	LeaseTTL time.Duration
	// Remote runs the stages whose pipeline names runs_on: labels (the agents). Default:
	// none, and those stages run on the executor given to New.
	Remote execute.Executor
	// LostRetries is how many times a stage whose agent was lost (execute.ErrLost) is run
	// again, as a new attempt recorded with reason agent_lost, before it fails. Default: 2;
	// negative: none.
	LostRetries int
	// Logger defaults to slog.Default(); Now to time.Now.
	Logger *slog.Logger
	Now    func() time.Time
}

func (c *Config) validate() error {
	if c.Capacity == 0 {
		c.Capacity = 4
	}
	if c.Capacity < 0 {
		return fmt.Errorf("schedule: capacity %d must be positive", c.Capacity)
	}
	if c.DefaultTeamQuota < 0 {
		return fmt.Errorf("schedule: default team quota %d must be 0 (no limit) or more", c.DefaultTeamQuota)
	}
	for team, n := range c.TeamQuotas {
		if n < 0 {
			return fmt.Errorf("schedule: quota %d of team %q must be 0 (no limit) or more", n, team)
		}
	}
	if c.HotfixBranches == nil {
		c.HotfixBranches = []string{"hotfix/*"}
	}
	if c.Secrets == nil {
		c.Secrets = func(context.Context, SecretParams) (string, error) {
			return "", errors.New("no secret store is configured")
		}
	}
	if c.Owner == "" {
		c.Owner = DefaultOwner()
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 15 * time.Second
	}
	if c.LeaseTTL < 30*time.Millisecond {
		return fmt.Errorf("schedule: lease time %s is too short (want 30ms or more; 15s is the default)", c.LeaseTTL)
	}
	switch {
	case c.LostRetries == 0:
		c.LostRetries = 2
	case c.LostRetries < 0:
		c.LostRetries = 0
	}
	if c.LogFlush == 0 {
		c.LogFlush = 100 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// StageEnvParams name the stage attempt Config.StageEnv is asked about.
type StageEnvParams struct {
	Info    *run.Info
	RunID   string
	Stage   string
	Attempt int
	Def     *pipeline.Stage
}

// Causes of a stage context's end, to tell them apart from a timeout.
var (
	errRunCancelled = errors.New("schedule: run cancelled")
	errShutdown     = errors.New("schedule: scheduler stopped")
	// ErrUnknownRun is returned for a run the scheduler does not drive (it may have finished).
	ErrUnknownRun = errors.New("schedule: run not active")
)

// Scheduler drives runs. Create it with New, then Start; Stop ends it.
type Scheduler struct {
	cfg   Config
	store Store
	exec  execute.Executor
	log   *slog.Logger

	// Derived from the runs' events (rebuilt by Start), never stored on their own.
	mu          sync.Mutex
	runs        map[string]*active
	queue       readyQueue           // ready stages; popLocked chooses among them
	free        int                  // executor slots free
	order       uint64               // last creation order given to a run, and enqueue order of items
	teamRunning map[string]int       // running stages per team
	quotas      map[string]int       // per-team limits (Config.TeamQuotas, SetTeamQuota)
	groups      map[string][]*active // unfinished runs per concurrency group, in trigger order
	kicks       []*active            // runs that got a group slot, to advance from dispatch
	wake        chan struct{}
	stages      sync.WaitGroup // stage goroutines
	// ctx ends dispatching at Stop. base outlives it: stage contexts and store writes derive
	// from base, so that Stop ends stages with its own cause (errShutdown), not a plain cancel.
	ctx  context.Context
	base context.Context
	stop context.CancelFunc
	done chan struct{}

	renewedAt time.Time // last successful lease renewal; only the lease loop touches it
}

// active is a run in flight. Its mutex serialises appends, so its state always matches the log.
type active struct {
	mu      sync.Mutex
	state   *run.State
	cancels map[string]context.CancelCauseFunc // running stages
	secrets []string                           // values to mask in this run's logs
	logSeq  map[string]int64                   // last log line seq per stage
	done    chan struct{}                      // closed once RunFinished is appended (or the run is gone)
	gone    bool                               // its RunCreated could not be stored: it never existed
	// created: Create made it in this process, so a stage not in logSeq has no log lines
	// yet (only a recovered run's must be looked up in the store).
	created bool
	// lost: another server took the run's lease; nothing more is appended from here.
	lost        bool
	lostRetries map[string]int // agent_lost re-runs per stage, in this process

	// Set by register, then fixed.
	id         string
	order      uint64 // creation (trigger) order
	class      int    // classRank of Info.Priority
	team       string
	group      string // groupKey; empty: no concurrency group
	limit      int    // runs of the group at once
	superseder string // set at recovery: the newer run of its group that cancels it
}

type item struct {
	runID, stage string
	attempt      int
	class        int
	team         string
	order        uint64
}

// New makes a scheduler; it does nothing until Start.
func New(cfg Config, st Store, ex execute.Executor) (*Scheduler, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Scheduler{
		cfg: cfg, store: st, exec: ex, log: cfg.Logger,
		runs: map[string]*active{}, free: cfg.Capacity, teamRunning: map[string]int{}, quotas: maps.Clone(cfg.TeamQuotas), groups: map[string][]*active{},
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}, nil
}

// Start recovers every unfinished run from the store and starts dispatching. Stages that were
// running when the previous process died are recorded as interrupted and queued again.
func (s *Scheduler) Start(ctx context.Context) error {
	s.base = context.WithoutCancel(ctx)
	s.ctx, s.stop = context.WithCancel(s.base)
	if s.quotas == nil {
		s.quotas = map[string]int{}
	}
	if s.cfg.Leases != nil {
		if err := s.leaseStart(ctx); err != nil {
			return err
		}
		go s.dispatch()
		return nil
	}
	unfinished, err := s.store.RunList(ctx, store.RunListParams{Unfinished: true, Limit: 1 << 30})
	if err != nil {
		return fmt.Errorf("schedule: list unfinished runs: %w", err)
	}
	if s.quotas == nil {
		s.quotas = map[string]int{}
	}
	// Register every run before advancing any: group slots depend on all of them. Oldest
	// first gives the same trigger order as before the restart.
	var recovered []*active
	for i := len(unfinished) - 1; i >= 0; i-- {
		id := unfinished[i].ID
		events, err := s.store.EventList(ctx, store.EventListParams{RunID: id})
		if err != nil {
			return fmt.Errorf("schedule: recover run %s: %w", id, err)
		}
		state, err := run.Fold(events)
		if err != nil {
			return fmt.Errorf("schedule: recover run %s: %w", id, err)
		}
		a := newActive(state)
		older, _ := s.register(a) // RunList lists each run once
		for _, old := range older {
			old.superseder = a.id // the newest wins: later runs overwrite
		}
		recovered = append(recovered, a)
	}
	for _, a := range recovered {
		if err := s.recover(ctx, a); err != nil {
			return err
		}
	}
	go s.dispatch()
	return nil
}

func newActive(state *run.State) *active {
	return &active{state: state, cancels: map[string]context.CancelCauseFunc{}, logSeq: map[string]int64{}, lostRetries: map[string]int{}, done: make(chan struct{})}
}

// supersededReason is the cancel reason of a run superseded by a newer one of its group.
func supersededReason(newer string) string { return "superseded by run " + newer }

func (s *Scheduler) recover(ctx context.Context, a *active) error {
	id := a.id
	a.mu.Lock()
	defer a.mu.Unlock()
	state := a.state
	// A newer run of the group was created but the crash came before it cancelled this one.
	if a.superseder != "" && !state.CancelRequested {
		if err := s.appendLocked(ctx, a, run.Event{Type: run.RunCancelRequested, Reason: supersededReason(a.superseder)}); err != nil {
			return fmt.Errorf("schedule: recover run %s: %w", id, err)
		}
	}
	var interrupted []run.Event
	for _, st := range state.Stages {
		switch st.Status {
		case run.StatusRunning:
			interrupted = append(interrupted, run.Event{Type: run.StageInterrupted, Stage: st.Name(), Attempt: st.Attempt,
				Reason: fmt.Sprintf("attempt %d was running when the server stopped; its process died with it", st.Attempt)})
		case run.StatusQueued:
			s.enqueue(a, st.Name(), st.Attempt)
		}
	}
	if err := s.appendAdvanceLocked(ctx, a, interrupted...); err != nil {
		return fmt.Errorf("schedule: recover run %s: %w", id, err)
	}
	s.log.Info("recovered run", "run", id, "seq", a.state.Seq, "interrupted", len(interrupted))
	return nil
}

// Stop kills running stages without recording them as finished (a later Start re-runs them)
// and waits for their goroutines. Runs stay unfinished in the store.
func (s *Scheduler) Stop() {
	if s.stop == nil {
		return // never started
	}
	s.stop()
	// Lock order is a.mu before s.mu (appendLocked takes s.mu under a.mu): collect the runs
	// first, then lock each on its own.
	s.mu.Lock()
	runs := slices.Collect(maps.Values(s.runs))
	s.mu.Unlock()
	for _, a := range runs {
		a.mu.Lock()
		for _, cancel := range a.cancels {
			cancel(errShutdown)
		}
		a.mu.Unlock()
	}
	s.stages.Wait()
	// Handed over at once rather than after the lease time: the runs are unfinished and
	// whoever claims them records the killed stages as interrupted.
	for _, a := range runs {
		s.releaseLease(a.id)
	}
}

// CreateParams describes a run to start.
type CreateParams struct {
	// ID of the run. Empty: a new time-ordered UUID. A caller that may retry after a crash
	// (the webhook inbox) derives it from what started the run, so that the retry finds the
	// run (ErrRunExists) instead of starting a second one.
	ID   string
	Info run.Info
}

// ErrRunExists is returned by Create when a run with the given ID exists already.
var ErrRunExists = errors.New("schedule: run exists")

// Create starts a run of p.Info.Pipeline and returns its id once RunCreated is durable.
func (s *Scheduler) Create(ctx context.Context, p CreateParams) (string, error) {
	info := p.Info
	if info.Pipeline == nil || len(info.Pipeline.Stages) == 0 {
		return "", errors.New("schedule: a run needs a pipeline with stages")
	}
	if info.Priority == "" {
		info.Priority = s.classify(&info)
	} else if !slices.Contains(classes, info.Priority) {
		return "", fmt.Errorf("schedule: priority %q: want one of %s", info.Priority, strings.Join(classes, ", "))
	}
	if c := info.Pipeline.Concurrency; c != nil && info.Group == "" {
		info.Group = expandGroup(c.Group, &info)
	}
	id := p.ID
	if id == "" {
		id = uuid.Must(uuid.NewV7()).String()
	}
	if s.cfg.Leases != nil {
		// Taken before RunCreated is stored: no other server may claim the run as one
		// without a lease between the two.
		now := s.cfg.Now()
		ok, err := s.cfg.Leases.LeaseAcquire(ctx, store.LeaseParams{Name: leaseName(id), Owner: s.cfg.Owner, Now: now, Until: now.Add(s.cfg.LeaseTTL)})
		if err != nil {
			return "", fmt.Errorf("schedule: create run %s: %w", id, err)
		}
		if !ok {
			return id, fmt.Errorf("%w: %s", ErrRunExists, id)
		}
	}
	a := newActive(&run.State{})
	a.created = true
	a.mu.Lock()
	first := []run.Event{{RunID: id, Type: run.RunCreated, Info: &info}}
	if err := s.applyLocked(a, first); err != nil {
		a.mu.Unlock()
		return "", fmt.Errorf("schedule: create run %s: %w", id, err)
	}
	// Registered before RunCreated is durable, so that its first append can also queue
	// the stages that are ready at once (if it holds a slot of its group): one write, not
	// two, on the store's one writer, where a burst of triggers waits. Until the append
	// returns, a.mu keeps everyone else (Cancel, Waiting, a newer run of its group) off it.
	older, ok := s.register(a)
	if !ok {
		a.mu.Unlock()
		return id, fmt.Errorf("%w: %s", ErrRunExists, id)
	}
	if err := s.commitAdvanceLocked(ctx, a, 0, first); err != nil {
		s.forgetLocked(a)
		a.mu.Unlock()
		s.releaseLease(id)
		if errors.Is(err, store.ErrConflict) {
			return id, fmt.Errorf("%w: %s", ErrRunExists, id)
		}
		return "", err
	}
	a.mu.Unlock()
	// RunCreated is durable: should we crash before these cancels, Start derives them.
	for _, o := range older {
		if err := s.Cancel(ctx, o.id, supersededReason(id)); err != nil && !errors.Is(err, ErrUnknownRun) {
			return id, err
		}
	}
	return id, nil
}

// forgetLocked undoes the register of a run whose RunCreated could not be stored: the
// scheduler drops it, and whoever held it (a newer run of its group about to cancel it, a
// Wait) finds it gone. The caller holds a.mu.
func (s *Scheduler) forgetLocked(a *active) {
	a.gone = true
	a.state = &run.State{}
	s.mu.Lock()
	if s.runs[a.id] == a {
		s.unregisterLocked(a)
	}
	s.mu.Unlock()
	s.signal() // runs of its group behind it may hold a slot now
	close(a.done)
}

// Cancel records a cancel request and kills the run's running stages. With Leases, a run
// another server drives is cancelled by that server (CancelRelay), or taken over and
// cancelled here when no server holds it.
func (s *Scheduler) Cancel(ctx context.Context, id, reason string) error {
	if s.get(id) == nil && s.cfg.Leases != nil {
		return s.cancelRemote(ctx, id, reason)
	}
	return s.cancelLocal(ctx, id, reason)
}

func (s *Scheduler) cancelLocal(ctx context.Context, id, reason string) error {
	a := s.get(id)
	if a == nil {
		return ErrUnknownRun
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gone || a.lost {
		return ErrUnknownRun
	}
	if a.state.Done() || a.state.CancelRequested {
		return nil
	}
	if err := s.appendAdvanceLocked(ctx, a, run.Event{Type: run.RunCancelRequested, Reason: reason}); err != nil {
		return err
	}
	for _, cancel := range a.cancels {
		cancel(errRunCancelled)
	}
	return nil
}

// Wait blocks until the run finishes and returns its final state. With Leases, a run
// another server drives is watched in the store until it finishes.
func (s *Scheduler) Wait(ctx context.Context, id string) (*run.State, error) {
	for {
		if a := s.get(id); a != nil {
			select {
			case <-a.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		events, err := s.store.EventList(ctx, store.EventListParams{RunID: id})
		if err != nil {
			return nil, err
		}
		if len(events) == 0 {
			return nil, fmt.Errorf("schedule: run %s: %w", id, store.ErrNotFound)
		}
		st, err := run.Fold(events)
		if err != nil || st.Done() || s.cfg.Leases == nil {
			return st, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *Scheduler) get(id string) *active {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs[id]
}

// appendLocked numbers events after the run's last seq, folds them in and appends them with
// the expected seq. On failure the state is rebuilt from the store, so memory never runs
// ahead of the log. The caller holds a.mu.
func (s *Scheduler) appendLocked(ctx context.Context, a *active, events ...run.Event) error {
	if len(events) == 0 {
		return nil
	}
	expected := a.state.Seq
	if err := s.applyLocked(a, events); err != nil {
		s.reload(ctx, a)
		return err
	}
	return s.commitLocked(ctx, a, expected, events)
}

// applyLocked numbers events after the run's last seq, stamps them and folds them into the
// run's state, in memory only: commitLocked makes them durable. The caller holds a.mu.
func (s *Scheduler) applyLocked(a *active, events []run.Event) error {
	now := s.cfg.Now().UTC()
	for i := range events {
		e := &events[i]
		if e.RunID == "" {
			e.RunID = a.state.ID
		}
		e.Seq = a.state.Seq + 1
		if e.Time.IsZero() {
			e.Time = now
		}
		if err := a.state.Apply(*e); err != nil {
			return err
		}
	}
	return nil
}

// commitLocked appends events that applyLocked folded in, after seq expected. On failure the
// state is rebuilt from the store, so memory never runs ahead of the log. The caller holds
// a.mu.
func (s *Scheduler) commitLocked(ctx context.Context, a *active, expected int64, events []run.Event) error {
	if a.lost {
		return fmt.Errorf("schedule: append to run %s: %w", a.state.ID, errLeaseLost)
	}
	err := s.store.EventAppend(ctx, store.EventAppendParams{
		RunID: a.state.ID, ExpectedSeq: expected, Events: events, Summary: a.state.Summary(),
	})
	if err != nil {
		s.reload(ctx, a)
		if s.cfg.Leases != nil && errors.Is(err, store.ErrConflict) && a.created && expected == 0 {
			return fmt.Errorf("schedule: append to run %s: %w", a.state.ID, err) // Create: the run exists
		}
		if s.cfg.Leases != nil && errors.Is(err, store.ErrConflict) && !s.checkLeaseLocked(ctx, a) {
			return fmt.Errorf("schedule: append to run %s: %w", a.state.ID, errLeaseLost)
		}
		return fmt.Errorf("schedule: append to run %s: %w", a.state.ID, err)
	}
	if s.cfg.OnEvent != nil {
		for _, e := range events {
			s.cfg.OnEvent(e)
		}
	}
	if a.state.Done() {
		s.mu.Lock()
		s.unregisterLocked(a)
		s.mu.Unlock()
		s.signal() // a group slot may have freed
		close(a.done)
		s.releaseLease(a.id)
	}
	return nil
}

func (s *Scheduler) reload(ctx context.Context, a *active) {
	if a.state.ID == "" {
		return
	}
	events, err := s.store.EventList(context.WithoutCancel(ctx), store.EventListParams{RunID: a.state.ID})
	if err == nil {
		var st *run.State
		if st, err = run.Fold(events); err == nil {
			a.state = st
			return
		}
	}
	s.log.Error("cannot reload run state", "run", a.state.ID, "err", err)
}

// advanceLocked appends what run.Next decides and queues the stages it made ready. The caller
// holds a.mu.
func (s *Scheduler) advanceLocked(ctx context.Context, a *active) error {
	if a.state.Done() || (!a.state.CancelRequested && !s.admitted(a)) {
		return nil // a run beyond its group's limit starts nothing until it gets a slot
	}
	for range 3 { // a conflict means another writer moved the run: decide again on its state
		events := run.Next(a.state, s.cfg.Now().UTC())
		err := s.appendLocked(ctx, a, events...)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return err
		}
		for _, e := range events {
			if e.Type == run.StageQueued {
				s.enqueue(a, e.Stage, e.Attempt)
			}
		}
		return nil
	}
	return fmt.Errorf("schedule: run %s: %w after 3 tries", a.state.ID, store.ErrConflict)
}

// appendAdvanceLocked appends events and, in the same write, what run.Next decides once
// they are folded in; then it queues the stages made ready. One write instead of two for
// every stage result is a good part of what the store's one writer does under load. The
// caller holds a.mu.
func (s *Scheduler) appendAdvanceLocked(ctx context.Context, a *active, events ...run.Event) error {
	expected := a.state.Seq
	if err := s.applyLocked(a, events); err != nil {
		s.reload(ctx, a)
		return err
	}
	return s.commitAdvanceLocked(ctx, a, expected, events)
}

// commitAdvanceLocked is appendAdvanceLocked for events that applyLocked folded in already,
// after seq expected. The caller holds a.mu.
func (s *Scheduler) commitAdvanceLocked(ctx context.Context, a *active, expected int64, events []run.Event) error {
	if !a.state.Done() && (a.state.CancelRequested || s.admitted(a)) { // else: see advanceLocked
		next := run.Next(a.state, s.cfg.Now().UTC())
		if err := s.applyLocked(a, next); err != nil {
			s.reload(ctx, a)
			return err
		}
		events = append(events, next...)
	}
	if len(events) == 0 {
		return nil
	}
	if err := s.commitLocked(ctx, a, expected, events); err != nil {
		return err
	}
	for _, e := range events {
		if e.Type == run.StageQueued {
			s.enqueue(a, e.Stage, e.Attempt)
		}
	}
	return nil
}

func (s *Scheduler) enqueue(a *active, stage string, attempt int) {
	s.mu.Lock()
	s.order++
	s.queue.push(item{runID: a.id, stage: stage, attempt: attempt, class: a.class, team: a.team, order: s.order})
	s.mu.Unlock()
	s.signal()
}

func (s *Scheduler) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// dispatch starts queued stages while slots are free.
func (s *Scheduler) dispatch() {
	defer close(s.done)
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		}
		s.advanceKicked()
		s.mu.Lock()
		for s.free > 0 {
			it, ok := s.popLocked()
			if !ok {
				break
			}
			a := s.runs[it.runID]
			if a == nil {
				continue
			}
			s.free--
			s.teamRunning[it.team]++
			s.stages.Add(1)
			go s.runStage(a, it)
		}
		s.mu.Unlock()
	}
}

// advanceKicked advances the runs that got a slot of their concurrency group. It runs on the
// dispatch goroutine, holding no lock: a run finishing under its own lock cannot take
// another run's.
func (s *Scheduler) advanceKicked() {
	for {
		s.mu.Lock()
		kicks := s.kicks
		s.kicks = nil
		s.mu.Unlock()
		if len(kicks) == 0 {
			return
		}
		for _, b := range kicks {
			b.mu.Lock()
			if err := s.advanceLocked(s.base, b); err != nil {
				s.log.Error("cannot advance run", "run", b.id, "err", err)
			}
			b.mu.Unlock()
		}
	}
}

func (s *Scheduler) release(it item) {
	s.mu.Lock()
	s.free++
	if s.teamRunning[it.team]--; s.teamRunning[it.team] <= 0 {
		delete(s.teamRunning, it.team)
	}
	s.mu.Unlock()
	s.signal()
	s.stages.Done()
}
