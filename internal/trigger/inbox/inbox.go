// Package inbox is the durable queue between webhook receivers and runs. Add writes a
// trigger to the store and returns only once it is on disk: concurrent Adds are batched
// into one fsynced transaction (group commit), so that a burst costs one fsync per batch,
// not per delivery, and the request path does no pipeline work. Workers then take pending
// triggers in arrival order, match them against each pipeline's on: section, and start runs
// through the Launcher with run IDs derived from the trigger, so that re-processing after a
// crash finds the run (schedule.ErrRunExists) instead of starting it twice. Cron schedules
// (on.cron) become triggers of the same inbox.
package inbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/schedule"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/trigger"
)

// Store is what the inbox needs of a store.
type Store interface {
	RepoGet(ctx context.Context, fullName string) (trigger.Repo, error)
	RepoList(ctx context.Context) ([]trigger.Repo, error)
	TriggerAdd(ctx context.Context, p store.TriggerAddParams) ([]store.TriggerAdded, error)
	TriggerList(ctx context.Context, p store.TriggerListParams) ([]store.TriggerRecord, error)
	TriggerDone(ctx context.Context, p store.TriggerDoneParams) error
}

// Config configures an Inbox.
type Config struct {
	Store    Store     // required
	Launcher *Launcher // required
	// Window is the dedup window: a trigger with the dedup key of one added less than
	// Window ago is a duplicate. Default: 10 minutes; negative: delivery ids only.
	Window time.Duration
	// MaxBatch bounds the triggers of one group commit. Default: 1024.
	MaxBatch int
	// Workers process pending triggers in parallel. Default: 4.
	Workers int
	// Poll is how often workers look for pending triggers when nothing woke them (a
	// trigger added by another process sharing the store). Default: 5s.
	Poll time.Duration
	// Wake, if set, receives a value when another process sharing the store added
	// triggers (the PostgreSQL store's TriggerNotify): workers look at once rather than
	// at the next Poll. Default: nil, Poll alone.
	Wake <-chan struct{}
	// Claim, if set, takes up to n pending triggers for this process alone (the PostgreSQL
	// store's TriggerClaim, with a lease after which another process may take a trigger this
	// one did not finish), so that servers sharing a store never route one trigger twice.
	// Default: nil, every pending trigger is listed (one server per store).
	Claim func(ctx context.Context, n int) ([]store.TriggerRecord, error)
	// Cron enables on.cron schedules, read from each repo's default branch. Default: off.
	Cron bool
	// Logger defaults to slog.Default(); Now to time.Now.
	Logger *slog.Logger
	Now    func() time.Time
}

func (c *Config) validate() error {
	if c.Store == nil || c.Launcher == nil || c.Launcher.Git == nil || c.Launcher.Scheduler == nil {
		return errors.New("inbox: Store and a Launcher with Git and Scheduler are required")
	}
	switch {
	case c.Window == 0:
		c.Window = 10 * time.Minute
	case c.Window < 0:
		c.Window = 0
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 1024
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.Poll <= 0 {
		c.Poll = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// ErrStopped is returned by Add after Stop.
var ErrStopped = errors.New("inbox: stopped; the server is shutting down, deliver again later")

// Inbox accepts triggers durably and processes them. New, then Start; Stop ends it.
type Inbox struct {
	cfg  Config
	log  *slog.Logger
	reqs chan addReq
	wake chan struct{}

	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
	cron *cronState
}

type addReq struct {
	t    trigger.Trigger
	done chan addRes
}

type addRes struct {
	added store.TriggerAdded
	err   error
}

// New makes an inbox; it accepts nothing until Start.
func New(cfg Config) (*Inbox, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Inbox{cfg: cfg, log: cfg.Logger, reqs: make(chan addReq, cfg.MaxBatch), wake: make(chan struct{}, 1)}, nil
}

// Start starts the committer, the workers (which first take whatever a previous process
// left pending) and the cron loop.
func (in *Inbox) Start(ctx context.Context) error {
	in.ctx, in.stop = context.WithCancel(context.WithoutCancel(ctx))
	in.wg.Add(2)
	go in.commitLoop()
	go in.processLoop()
	if in.cfg.Cron {
		in.cron = &cronState{last: in.cfg.Now()}
		in.wg.Add(1)
		go in.cronLoop()
	}
	in.signal()
	return nil
}

// Stop stops accepting, lets a batch being committed finish, and waits for the workers
// (a trigger being processed is left pending and re-processed at the next Start).
func (in *Inbox) Stop() {
	if in.stop == nil {
		return
	}
	in.stop()
	in.wg.Wait()
}

// Add puts t in the inbox (setting its ID and ReceivedAt) and returns once it is durable,
// or, for a duplicate, the id of the trigger it duplicates.
func (in *Inbox) Add(ctx context.Context, t trigger.Trigger) (store.TriggerAdded, error) {
	if in.ctx == nil {
		return store.TriggerAdded{}, errors.New("inbox: Add before Start")
	}
	t.ID = uuid.Must(uuid.NewV7()).String()
	t.ReceivedAt = in.cfg.Now().UTC()
	r := addReq{t: t, done: make(chan addRes, 1)}
	select {
	case in.reqs <- r:
	case <-in.ctx.Done():
		return store.TriggerAdded{}, ErrStopped
	case <-ctx.Done():
		return store.TriggerAdded{}, ctx.Err()
	}
	// Once queued, the answer always comes (the committer answers every request it takes,
	// and drains the queue at Stop); waiting on it alone keeps "acknowledged" = "on disk".
	res := <-r.done
	return res.added, res.err
}

// commitLoop is the group commit: it takes every request waiting, writes them in one
// transaction, and answers them all.
func (in *Inbox) commitLoop() {
	defer in.wg.Done()
	batch := make([]addReq, 0, in.cfg.MaxBatch)
	ts := make([]trigger.Trigger, 0, in.cfg.MaxBatch)
	for {
		batch, ts = batch[:0], ts[:0]
		select {
		case r := <-in.reqs:
			batch = append(batch, r)
		case <-in.ctx.Done():
			for {
				select {
				case r := <-in.reqs:
					r.done <- addRes{err: ErrStopped}
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < in.cfg.MaxBatch {
			select {
			case r := <-in.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		for _, r := range batch {
			ts = append(ts, r.t)
		}
		// Not in.ctx: a batch taken is finished even during Stop, so its senders get
		// a true answer.
		added, err := in.cfg.Store.TriggerAdd(context.Background(), store.TriggerAddParams{Triggers: ts, Window: in.cfg.Window})
		if err != nil {
			in.log.Error("inbox: cannot store triggers", "count", len(ts), "err", err)
			err = fmt.Errorf("inbox: the trigger could not be stored; deliver it again: %w", err)
		}
		fresh := false
		for i, r := range batch {
			if err != nil {
				r.done <- addRes{err: err}
				continue
			}
			fresh = fresh || !added[i].Duplicate
			r.done <- addRes{added: added[i]}
		}
		if fresh {
			in.signal()
		}
	}
}

func (in *Inbox) signal() {
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// processLoop hands pending triggers to workers, oldest first.
func (in *Inbox) processLoop() {
	defer in.wg.Done()
	poll := time.NewTicker(in.cfg.Poll)
	defer poll.Stop()
	for {
		select {
		case <-in.ctx.Done():
			return
		case <-in.wake:
		case <-in.cfg.Wake:
		case <-poll.C:
		}
		for in.ctx.Err() == nil {
			var pending []store.TriggerRecord
			var err error
			if in.cfg.Claim != nil {
				pending, err = in.cfg.Claim(in.ctx, 256)
			} else {
				pending, err = in.cfg.Store.TriggerList(in.ctx, store.TriggerListParams{Pending: true, Limit: 256})
			}
			if err != nil {
				if in.ctx.Err() == nil {
					in.log.Error("inbox: list pending triggers", "err", err)
				}
				break
			}
			if len(pending) == 0 {
				break
			}
			in.processAll(pending)
		}
	}
}

func (in *Inbox) processAll(pending []store.TriggerRecord) {
	work := make(chan *store.TriggerRecord)
	var wg sync.WaitGroup
	for range min(in.cfg.Workers, len(pending)) {
		wg.Go(func() {
			for r := range work {
				in.process(r)
			}
		})
	}
	for i := range pending {
		select {
		case work <- &pending[i]:
		case <-in.ctx.Done():
		}
		if in.ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
}

// runNamespace makes run ids from trigger ids (UUID v5): the same trigger and pipeline file
// always name the same run.
var runNamespace = uuid.MustParse("5b0a6f4e-3c1f-4f57-9a55-0d1f6f0c7a11")

// RunID is the id of the run trigger id starts for pipeline file.
func RunID(triggerID, file string) string {
	return uuid.NewSHA1(runNamespace, []byte(triggerID+"\x00"+file)).String()
}

// process routes one trigger and marks it done. On shutdown it leaves the trigger pending.
func (in *Inbox) process(r *store.TriggerRecord) {
	runs, note := in.route(in.ctx, &r.Trigger)
	if in.ctx.Err() != nil {
		return
	}
	if note != "" {
		in.log.Info("trigger started no run", "trigger", r.ID, "repo", r.Repo, "note", note)
	}
	err := in.cfg.Store.TriggerDone(in.ctx, store.TriggerDoneParams{ID: r.ID, At: in.cfg.Now().UTC(), Runs: runs, Note: note})
	if err != nil && in.ctx.Err() == nil {
		in.log.Error("inbox: mark trigger done", "trigger", r.ID, "err", err)
	}
}

// Route starts the runs t matches, as a worker does, without marking t done: what a
// worker does again for a trigger the server died processing. Run ids are derived from
// the trigger, so routing one trigger twice starts its runs once.
func (in *Inbox) Route(ctx context.Context, t *trigger.Trigger) ([]string, error) {
	runs, note := in.route(ctx, t)
	if len(runs) == 0 && note != "" {
		return nil, errors.New(note)
	}
	return runs, nil
}

// route decides what t starts. It returns the runs and, when it starts none or fails, why.
func (in *Inbox) route(ctx context.Context, t *trigger.Trigger) (runs []string, note string) {
	if t.Deleted() {
		return nil, fmt.Sprintf("the %s was deleted: nothing to build", t.Kind)
	}
	if t.Kind == trigger.KindPullRequest && (t.Action == trigger.ActionClosed || t.Action == trigger.ActionMerged) {
		return nil, "the pull request was " + t.Action + ": nothing to build (the push to its target branch starts that run)"
	}
	l := in.cfg.Launcher
	repo, err := in.cfg.Store.RepoGet(ctx, t.Repo)
	if err != nil {
		return nil, fmt.Sprintf("repo %s: %v (register it with POST /api/v1/repos)", t.Repo, err)
	}
	ref := t.SHA
	if ref == "" {
		ref = t.Branch
	}
	rev, c, err := l.resolve(ctx, repo, ref)
	if err != nil {
		return nil, err.Error()
	}
	p := c.p
	// The ref resolved to a commit; keep the trigger's branch and tag, which a bare sha
	// does not carry.
	rev.Branch, rev.Tag = t.Branch, t.Tag
	paths := t.Changes.Paths()
	if paths == nil && t.Kind != trigger.KindCron && t.Kind != trigger.KindManual {
		before := t.Before
		if t.PR != nil {
			before = t.PR.BaseSHA
		}
		// Best effort: without the files, path filters let the trigger through.
		if changed, err := l.Git.ChangedFiles(ctx, rev, before); err == nil && changed != nil {
			paths = changed
		}
	}
	in1 := pipeline.TriggerInput{Event: t.Kind, Branch: t.Branch, Tag: t.Tag, Paths: paths, Schedule: t.Schedule}
	if t.PR != nil {
		in1.Labels = t.PR.Labels
	}
	if ok, why := p.On.Match(in1); !ok {
		return nil, fmt.Sprintf("%s: %s", c.file, why)
	}
	refName := t.Branch
	if t.Tag != "" {
		refName = t.Tag
	}
	info := l.info(repo, refName, rev, c, runTrigger(t, paths))
	info.DefaultBranch = t.DefaultBranch
	id, err := l.Scheduler.Create(ctx, schedule.CreateParams{ID: RunID(t.ID, l.file()), Info: info})
	if err != nil && !errors.Is(err, schedule.ErrRunExists) {
		return nil, fmt.Sprintf("create run: %v", err)
	}
	return []string{id}, ""
}
