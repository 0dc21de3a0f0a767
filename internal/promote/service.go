package promote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/paved/paved/internal/deploy"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// Sentinel errors; the API maps them to status codes.
var (
	ErrUnknownEnvironment = errors.New("promote: unknown environment")
	ErrNotApprover        = errors.New("promote: not an approver of this environment")
	ErrAuthor             = errors.New("promote: the author of a change cannot approve it")
	ErrNotPending         = errors.New("promote: the promotion does not wait for approval")
	ErrAlreadyDecided     = errors.New("promote: this approver already decided")
	ErrNoUser             = errors.New("promote: no user named")
	ErrInProgress         = errors.New("promote: a promotion of this freight to this environment is in progress")
	ErrNotHotfixUser      = errors.New("promote: not allowed to ask for hotfix promotions into this environment")
	ErrNoReason           = errors.New("promote: a reason is required")
)

// Store is what promotion reads and writes.
type Store interface {
	FreightPut(ctx context.Context, f store.Freight) error
	FreightGet(ctx context.Context, idOrAlias string) (store.Freight, error)
	FreightList(ctx context.Context, limit int) ([]store.Freight, error)
	PromotionAppend(ctx context.Context, p store.Promotion) error
	PromotionUpdate(ctx context.Context, p store.Promotion) (store.Promotion, error)
	PromotionGet(ctx context.Context, id string) (store.Promotion, error)
	DeploymentAppend(ctx context.Context, d store.Deployment) error
	DeploymentFinish(ctx context.Context, p store.DeploymentFinishParams) error
	PromotionList(ctx context.Context, p store.PromotionListParams) ([]store.Promotion, error)
	DeploymentList(ctx context.Context, p store.DeploymentListParams) ([]store.Deployment, error)
	RunList(ctx context.Context, p store.RunListParams) ([]run.Summary, error)
	EventList(ctx context.Context, p store.EventListParams) ([]run.Event, error)
	EventAppend(ctx context.Context, p store.EventAppendParams) error
}

// Deployer runs deployments: *deploy.Controller.
type Deployer interface {
	Deploy(ctx context.Context, req deploy.Request, rep deploy.Reporter) (store.Deployment, error)
}

// Changes lists the files that differ between two commits of a repository.
type Changes func(ctx context.Context, repo, from, to string) ([]string, error)

// Options wires a Service.
type Options struct {
	Config   Config
	Store    Store
	Deployer Deployer
	Changes  Changes // required for risk scoring
	Logger   *slog.Logger
	Now      func() time.Time
	// Tick is how often the loop looks for new freight, re-checks blocked promotions and
	// auto-promotes. Default 2s.
	Tick time.Duration
	// CreateRun starts a run (the scheduler's Create) and returns its id: hotfix
	// promotions start their follow-up runs with it. Nil: a hotfix notes that no
	// follow-up could be scheduled.
	CreateRun func(ctx context.Context, info run.Info) (string, error)
	// Teardown stops a preview environment (the deploy Controller's); Triggers lists the
	// trigger inbox (the store's TriggerList), where closed pull requests are seen. Either
	// nil: previews are never torn down.
	Teardown Teardown
	Triggers func(ctx context.Context, p store.TriggerListParams) ([]store.TriggerRecord, error)
	// GitOpsDir holds the clones of gitops config repositories (default: the system's
	// temporary directory). DriftEvery is how often a gitops environment is checked for
	// drift (default 1m).
	GitOpsDir  string
	DriftEvery time.Duration
	// DiffStat counts the lines each changed file gained and lost, for the approval view;
	// nil: the view lists the files without counts.
	DiffStat DiffStat
}

// Service runs promotions. Its methods are safe from any goroutine.
type Service struct {
	o      Options
	mu     sync.Mutex      // one decision at a time: a promotion is read, decided and written whole
	tickMu sync.Mutex      // one Tick at a time; guards seen
	seen   map[string]bool // runs already turned into freight (or found to make none)
	// tornDown are the closed pull requests' triggers whose previews were torn down; guarded
	// by tickMu.
	tornDown map[string]bool
	wg       sync.WaitGroup
	ctx      context.Context // deployments run under it, not under the request that approved them
	stop     context.CancelFunc
	gitops   *gitopsTargets // nil when no environment has a gitops target
}

// New returns a Service; Start runs its loop.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Tick <= 0 {
		o.Tick = time.Duration(o.Config.Tick)
	}
	if o.Tick <= 0 {
		o.Tick = 2 * time.Second
	}
	if o.DriftEvery <= 0 {
		o.DriftEvery = time.Minute
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{o: o, seen: map[string]bool{}, tornDown: map[string]bool{}, ctx: ctx, stop: cancel}
	// ParseConfig validated the targets: an error here is a Config built by hand.
	g, err := newGitopsTargets(o.Config, o.GitOpsDir)
	if err != nil {
		o.Logger.Error("promote: gitops targets", "err", err)
	}
	if err == nil && len(g.targets) > 0 {
		s.gitops = g
	}
	return s
}

// Config returns the environments config.
func (s *Service) Config() Config { return s.o.Config }

// Start resumes the deployments of promotions a stopped server left approved or deploying
// (deploying a digest again is safe: the controller finds it or replaces it), then runs the
// loop until Stop.
func (s *Service) Start() {
	for _, state := range []string{store.PromotionApproved, store.PromotionDeploying} {
		ps, err := s.o.Store.PromotionList(s.ctx, store.PromotionListParams{State: state})
		if err != nil {
			s.o.Logger.Warn("promote: resume", "err", err)
		}
		for _, p := range ps {
			e, _, ok := s.o.Config.Env(p.Environment)
			f, err := s.o.Store.FreightGet(s.ctx, p.Freight)
			if !ok || err != nil {
				s.finish(s.ctx, p.ID, store.PromotionFailed, "interrupted by a server stop and cannot resume: environment or freight is gone", "")
				continue
			}
			s.o.Logger.Info("promote: resume", "promotion", p.ID, "state", p.State)
			s.startDeploy(p, e, f)
		}
	}
	s.wg.Go(func() {
		t := time.NewTicker(s.o.Tick)
		defer t.Stop()
		for {
			if err := s.Tick(s.ctx); err != nil && s.ctx.Err() == nil {
				s.o.Logger.Warn("promote: tick", "err", err)
			}
			select {
			case <-s.ctx.Done():
				return
			case <-t.C:
			}
		}
	})
}

// Stop ends the loop and waits for deployments in progress to end.
func (s *Service) Stop() {
	s.stop()
	s.wg.Wait()
}

// Tick does one round of the loop: freight from newly succeeded runs, blocked promotions
// re-checked, auto-promotions requested.
func (s *Service) Tick(ctx context.Context) error {
	s.tickMu.Lock()
	defer s.tickMu.Unlock()
	var errs []error
	if err := s.collect(ctx); err != nil {
		errs = append(errs, err)
	}
	blocked, err := s.o.Store.PromotionList(ctx, store.PromotionListParams{State: store.PromotionBlocked})
	if err != nil {
		errs = append(errs, err)
	}
	for _, p := range blocked {
		if _, err := s.advance(ctx, p.ID); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.autoPromote(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := s.timeouts(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := s.followUps(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := s.checkDrift(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := s.teardownPreviews(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (s *Service) collect(ctx context.Context) error {
	runs, err := s.o.Store.RunList(ctx, store.RunListParams{Phase: run.Succeeded, Limit: 50})
	if err != nil {
		return fmt.Errorf("promote: list runs: %w", err)
	}
	for _, r := range runs {
		if s.seen[r.ID] {
			continue
		}
		events, err := s.o.Store.EventList(ctx, store.EventListParams{RunID: r.ID})
		if err != nil {
			return fmt.Errorf("promote: events of %s: %w", r.ID, err)
		}
		if f, ok := FreightFromEvents(events); ok {
			if err := s.o.Store.FreightPut(ctx, f); err != nil {
				return fmt.Errorf("promote: freight of %s: %w", r.ID, err)
			}
			s.o.Logger.Info("promote: freight", "alias", f.Alias, "run", r.ID, "sha", f.SHA)
		}
		s.seen[r.ID] = true
	}
	return nil
}

// autoPromote requests a promotion into every auto_promote environment for the freight
// that runs in the environment before it, once per freight and environment.
func (s *Service) autoPromote(ctx context.Context) error {
	envs := s.o.Config.Environments
	if len(envs) < 2 {
		return nil
	}
	freight, err := s.o.Store.FreightList(ctx, 20)
	if err != nil {
		return err
	}
	for _, f := range freight {
		for i := 1; i < len(envs); i++ {
			if !*envs[i].AutoPromote {
				continue
			}
			digest, err := artifactFor(envs[i], f)
			if err != nil {
				continue
			}
			// Only what runs in the previous environment now moves on: freight it already
			// replaced stays behind.
			live, err := s.o.Store.DeploymentList(ctx, store.DeploymentListParams{Environment: envs[i-1].Name, Outcome: store.DeploymentSucceeded, Limit: 1})
			if err != nil {
				return fmt.Errorf("promote: deployments of %s: %w", envs[i-1].Name, err)
			}
			if len(live) == 0 || live[0].Artifact != digest {
				continue
			}
			ps, err := s.o.Store.PromotionList(ctx, store.PromotionListParams{Freight: f.ID, Environment: envs[i].Name, Limit: 1})
			if err != nil || len(ps) > 0 {
				continue
			}
			if _, err := s.Promote(ctx, f.ID, envs[i].Name, "auto-promote"); err != nil {
				return err
			}
		}
	}
	return nil
}

// Promote requests that freight (ID or alias) enter env, and carries the request as far as
// it can: blocked by a policy, pending approvals, or deploying.
func (s *Service) Promote(ctx context.Context, freight, env, by string) (store.Promotion, error) {
	return s.promote(ctx, freight, env, by, false, "")
}

func (s *Service) promote(ctx context.Context, freight, env, by string, hotfix bool, why string) (store.Promotion, error) {
	e, _, ok := s.o.Config.Env(env)
	if !ok {
		return store.Promotion{}, fmt.Errorf("%w %q: the environments are %s", ErrUnknownEnvironment, env, strings.Join(s.o.Config.Names(), ", "))
	}
	if by == "" {
		return store.Promotion{}, fmt.Errorf("%w: say who asks for the promotion (an API token of a user)", ErrNoUser)
	}
	f, err := s.o.Store.FreightGet(ctx, freight)
	if err != nil {
		return store.Promotion{}, fmt.Errorf("promote: freight %s: %w", freight, err)
	}
	if _, err := artifactFor(e, f); err != nil {
		return store.Promotion{}, err
	}
	open, err := s.o.Store.PromotionList(ctx, store.PromotionListParams{Freight: f.ID, Environment: env})
	if err != nil {
		return store.Promotion{}, fmt.Errorf("promote: %w", err)
	}
	var superseded []string
	for _, o := range open {
		switch {
		case store.PromotionFinal(o.State):
		case hotfix && (o.State == store.PromotionBlocked || o.State == store.PromotionPending):
			// A hotfix takes the place of a promotion still held by the rules it skips.
			superseded = append(superseded, o.ID)
		default:
			return store.Promotion{}, fmt.Errorf("%w: %s is already on its way to %s (%s, %s)", ErrInProgress, f.Alias, env, o.ID, o.State)
		}
	}
	now := s.o.Now()
	id := "prm-" + uuid.NewString()[:13]
	for _, o := range superseded {
		s.finish(ctx, o, store.PromotionRejected, "superseded by hotfix "+id+" of "+by, "")
	}
	p := store.Promotion{ID: id, Freight: f.ID, Environment: env, State: store.PromotionBlocked,
		Reason: "not yet checked", Author: f.Author, RequestedBy: by, CreatedAt: now, UpdatedAt: now,
		Hotfix: hotfix, HotfixReason: why}
	if err := s.score(ctx, e, f, &p); err != nil {
		return store.Promotion{}, err
	}
	if hotfix {
		p.FollowUp = s.followUp(ctx, p, e, f)
	}
	if err := s.o.Store.PromotionAppend(ctx, p); err != nil {
		return store.Promotion{}, fmt.Errorf("promote: %w", err)
	}
	s.o.Logger.Info("promote: requested", "promotion", p.ID, "freight", f.Alias, "env", env, "risk", p.Risk, "by", by)
	if hotfix {
		s.record(ctx, f.RunID, "hotfix", fmt.Sprintf("HOTFIX %s of %s to %s requested by %s: %s; %s risk: %s; follow-up: %s", p.ID, f.Alias, env, by, why, p.Risk, p.RiskReason, followUpLine(p.FollowUp)))
	} else {
		s.record(ctx, f.RunID, "requested", fmt.Sprintf("%s of %s to %s requested by %s; %s risk: %s", p.ID, f.Alias, env, by, p.Risk, p.RiskReason))
	}
	return s.advance(ctx, p.ID)
}

// score fills the promotion's changeset and risk: the files between the environment's last
// successful deployment and the freight's sha.
func (s *Service) score(ctx context.Context, e Environment, f store.Freight, p *store.Promotion) error {
	if e.Approval.Mode == ApprovalNone {
		p.Risk, p.RiskReason, p.RequiredApprovals = RiskLow, "approval: none for "+e.Name, 0
		return nil
	}
	last, err := s.o.Store.DeploymentList(ctx, store.DeploymentListParams{Environment: e.Name, Outcome: store.DeploymentSucceeded, Limit: 1})
	if err != nil {
		return fmt.Errorf("promote: last deployment of %s: %w", e.Name, err)
	}
	known := len(last) > 0 && last[0].SHA != "" && f.SHA != ""
	var files []string
	if known && last[0].SHA != f.SHA {
		if s.o.Changes == nil {
			known = false
		} else if files, err = s.o.Changes(ctx, f.Repo, last[0].SHA, f.SHA); err != nil {
			return fmt.Errorf("promote: changes of %s from %s to %s: %w", f.Repo, short(last[0].SHA), short(f.SHA), err)
		}
	}
	p.Files = files
	if known {
		p.BaseSHA = last[0].SHA
	}
	p.Risk, p.RiskReason = s.o.Config.Risk.Score(files, known)
	p.RequiredApprovals = Approvals(p.Risk)
	if p.Hotfix && p.RequiredApprovals > 1 {
		p.Skipped = append(p.Skipped, fmt.Sprintf("approvals (%s risk needs %d; a hotfix needs 1)", p.Risk, p.RequiredApprovals))
		p.RequiredApprovals = 1
	}
	return nil
}

// advance re-checks a promotion's policies and approvals and moves it on.
func (s *Service) advance(ctx context.Context, id string) (store.Promotion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.o.Store.PromotionGet(ctx, id)
	if err != nil {
		return p, err
	}
	if p.State != store.PromotionBlocked && p.State != store.PromotionPending {
		return p, nil
	}
	e, idx, ok := s.o.Config.Env(p.Environment)
	if !ok {
		return p, fmt.Errorf("%w %q (promotion %s): it left the config", ErrUnknownEnvironment, p.Environment, p.ID)
	}
	f, err := s.o.Store.FreightGet(ctx, p.Freight)
	if err != nil {
		return p, err
	}
	reason, skipped, err := s.rules(ctx, e, idx, f, p.Hotfix)
	if err != nil {
		return p, err
	}
	if p.Hotfix {
		// The approvals line is written once, when the risk is scored; the rules are
		// judged again each time.
		for _, l := range p.Skipped {
			if strings.HasPrefix(l, "approvals ") {
				skipped = append(skipped, l)
			}
		}
		p.Skipped = skipped
	}
	state := store.PromotionPending
	switch {
	case reason != "":
		state = store.PromotionBlocked
	case timeoutApproved(p):
		state = store.PromotionApproved
		reason = fmt.Sprintf("%s risk: approved by the approval timeout (%d of %d approvals given)", p.Risk, approvals(p), p.RequiredApprovals)
	case approvals(p) >= p.RequiredApprovals:
		state = store.PromotionApproved
		reason = fmt.Sprintf("%s risk: %d of %d approvals", p.Risk, approvals(p), p.RequiredApprovals)
	default:
		reason = fmt.Sprintf("%s risk (%s): waits for %d more approval(s)", p.Risk, p.RiskReason, p.RequiredApprovals-approvals(p))
	}
	if state == p.State && reason == p.Reason {
		return p, nil
	}
	if state == store.PromotionPending && p.PendingSince.IsZero() {
		p.PendingSince = s.o.Now()
	}
	p.State, p.Reason, p.UpdatedAt = state, reason, s.o.Now()
	if p, err = s.o.Store.PromotionUpdate(ctx, p); err != nil {
		return p, err
	}
	s.record(ctx, f.RunID, state, fmt.Sprintf("%s to %s: %s", p.ID, p.Environment, reason))
	if state == store.PromotionApproved {
		s.startDeploy(p, e, f)
	}
	return p, nil
}

// rules names the first policy rule that keeps f out of environment e ("" if none). For a
// hotfix it enforces only the critical gates and lists in skipped what it did not enforce
// (the other gates, coverage, verified, soak) with what each would have said.
func (s *Service) rules(ctx context.Context, e Environment, idx int, f store.Freight, hotfix bool) (block string, skipped []string, err error) {
	block, skipped = gatesBlock(e, f.Gates, hotfix)
	if block != "" {
		return block, skipped, nil
	}
	check := func(rule, reason string) bool {
		if !hotfix {
			block = reason
			return reason != ""
		}
		verdict := "passes"
		if reason != "" {
			verdict = "would block: " + reason
		}
		skipped = append(skipped, rule+" ("+verdict+")")
		return false
	}
	if c := e.Coverage; c != nil && c.Min > 0 {
		reason := ""
		switch {
		case f.Coverage == nil || f.Coverage.Total == 0:
			reason = fmt.Sprintf("coverage: the run of %s reported no coverage and %s requires %g%% (declare reports: {coverage: FILE} on its test stage)", f.Alias, e.Name, c.Min)
		case f.Coverage.Percent < c.Min:
			reason = fmt.Sprintf("coverage %.1f%% < %g%% (%s's coverage.min; %d of %d covered)", f.Coverage.Percent, c.Min, e.Name, f.Coverage.Covered, f.Coverage.Total)
		}
		if check("coverage", reason) {
			return block, skipped, nil
		}
	}
	if idx == 0 {
		return "", skipped, nil
	}
	prev := s.o.Config.Environments[idx-1].Name
	digest, err := artifactFor(e, f)
	if err != nil {
		return "", skipped, err
	}
	d, ok, err := s.verified(ctx, prev, digest)
	if err != nil {
		return "", skipped, err
	}
	if !ok {
		if check("verified", fmt.Sprintf("verified: %s has not run in %s yet (no succeeded deployment of %s there)", f.Alias, prev, short(digest))) {
			return block, skipped, nil
		}
		if e.Soak > 0 {
			check("soak", fmt.Sprintf("soak: %s has not run in %s at all; %s requires %s", f.Alias, prev, e.Name, time.Duration(e.Soak)))
		}
		return "", skipped, nil
	}
	reason := ""
	if soaked := s.o.Now().Sub(d.FinishedAt); soaked < time.Duration(e.Soak) {
		reason = fmt.Sprintf("soak: %s has run %s of the %s %s requires in %s", f.Alias, soaked.Round(time.Second), time.Duration(e.Soak), e.Name, prev)
	}
	if e.Soak > 0 && check("soak", reason) {
		return block, skipped, nil
	}
	return "", skipped, nil
}

// verified finds the first succeeded deployment of digest to env.
func (s *Service) verified(ctx context.Context, env, digest string) (store.Deployment, bool, error) {
	ds, err := s.o.Store.DeploymentList(ctx, store.DeploymentListParams{Environment: env, Outcome: store.DeploymentSucceeded, Limit: 100})
	if err != nil {
		return store.Deployment{}, false, fmt.Errorf("promote: deployments of %s: %w", env, err)
	}
	for i := len(ds) - 1; i >= 0; i-- {
		if ds[i].Artifact == digest {
			return ds[i], true, nil
		}
	}
	return store.Deployment{}, false, nil
}

// Decide records an approver's decision; an approval that completes the required count
// deploys, a rejection fails the promotion.
func (s *Service) Decide(ctx context.Context, id, by string, approve bool, reason string) (store.Promotion, error) {
	if by == "" {
		return store.Promotion{}, fmt.Errorf("%w: approve with an API token of the approver", ErrNoUser)
	}
	s.mu.Lock()
	p, err := s.o.Store.PromotionGet(ctx, id)
	if err != nil {
		s.mu.Unlock()
		return p, err
	}
	e, _, ok := s.o.Config.Env(p.Environment)
	switch {
	case !ok:
		err = fmt.Errorf("%w %q", ErrUnknownEnvironment, p.Environment)
	case p.State != store.PromotionPending && p.State != store.PromotionBlocked:
		err = fmt.Errorf("%w: %s is %s", ErrNotPending, p.ID, p.State)
	case len(e.Approvers) > 0 && !contains(e.Approvers, by):
		err = fmt.Errorf("%w: %s may be approved by %s, not %s", ErrNotApprover, e.Name, strings.Join(e.Approvers, ", "), by)
	case approve && p.Author != "" && strings.EqualFold(p.Author, by):
		err = fmt.Errorf("%w: %s wrote the change in %s; another approver must approve", ErrAuthor, by, p.Freight)
	}
	for _, d := range p.Decisions {
		if err == nil && d.By == by {
			err = fmt.Errorf("%w: %s already decided on %s", ErrAlreadyDecided, by, p.ID)
		}
	}
	if err != nil {
		s.mu.Unlock()
		return p, err
	}
	if reason == "" {
		reason = map[bool]string{true: "approved", false: "rejected"}[approve]
	}
	p.Decisions = append(p.Decisions, store.Decision{By: by, Approved: approve, Reason: reason, At: s.o.Now()})
	p.UpdatedAt = s.o.Now()
	if !approve {
		p.State, p.Reason = store.PromotionRejected, fmt.Sprintf("rejected by %s: %s", by, reason)
	}
	p, err = s.o.Store.PromotionUpdate(ctx, p)
	s.mu.Unlock()
	if err != nil {
		return p, err
	}
	if f, ferr := s.o.Store.FreightGet(ctx, p.Freight); ferr == nil {
		verdict := map[bool]string{true: "approved", false: "rejected"}[approve]
		s.record(ctx, f.RunID, verdict, fmt.Sprintf("%s to %s %s by %s: %s", p.ID, p.Environment, verdict, by, reason))
	}
	if !approve {
		return p, nil
	}
	s.o.Logger.Info("promote: approved", "promotion", p.ID, "by", by)
	return s.advance(ctx, p.ID)
}

// record appends a PromotionRecorded event to the freight's run, so the run's log holds the
// audit trail of what became of what it built. A failure is logged, not returned: the
// promotion itself is recorded already.
func (s *Service) record(ctx context.Context, runID, status, reason string) {
	if runID == "" {
		return
	}
	ctx = context.WithoutCancel(ctx)
	var err error
	for range 5 { // ErrConflict: someone appended meanwhile; fold again
		var events []run.Event
		if events, err = s.o.Store.EventList(ctx, store.EventListParams{RunID: runID}); err != nil {
			break
		}
		var st *run.State
		if st, err = run.Fold(events); err != nil {
			break
		}
		e := run.Event{RunID: runID, Seq: st.Seq + 1, Type: run.PromotionRecorded, Time: s.o.Now(), Status: status, Reason: reason}
		if err = st.Apply(e); err != nil {
			break
		}
		err = s.o.Store.EventAppend(ctx, store.EventAppendParams{RunID: runID, ExpectedSeq: e.Seq - 1, Events: []run.Event{e}, Summary: st.Summary()})
		if !errors.Is(err, store.ErrConflict) {
			break
		}
	}
	if err != nil {
		s.o.Logger.Warn("promote: record in the run's events", "run", runID, "err", err)
	}
}

func approvals(p store.Promotion) int {
	n := 0
	for _, d := range p.Decisions {
		if d.Approved {
			n++
		}
	}
	return n
}

// startDeploy deploys an approved promotion in the background: exactly the freight's digest,
// with the environment's settings (or the previous environment's).
func (s *Service) startDeploy(p store.Promotion, e Environment, f store.Freight) {
	s.wg.Go(func() {
		ctx := s.ctx
		fail := func(reason string) {
			s.finish(ctx, p.ID, store.PromotionFailed, reason, "")
		}
		digest, err := artifactFor(e, f)
		if err != nil {
			fail(err.Error())
			return
		}
		if t := s.gitops.target(e.Name); t != nil {
			s.deployGitOps(ctx, t, p, e, f, digest)
			return
		}
		spec, err := s.specFor(ctx, e, digest)
		if err != nil {
			fail(err.Error())
			return
		}
		s.finish(ctx, p.ID, store.PromotionDeploying, "deploying "+short(digest)+" to "+e.Name, "")
		d, err := s.o.Deployer.Deploy(ctx, deploy.Request{Spec: spec, Artifact: digest, RunID: f.RunID, Repo: f.Repo, SHA: f.SHA,
			TriggeredBy: "promotion " + p.ID + " of " + f.Alias}, logReporter{s.o.Logger, p.ID})
		switch {
		case err != nil && s.ctx.Err() != nil:
			// The server stops: the promotion stays deploying and the next Start resumes it.
			s.o.Logger.Info("promote: deployment interrupted by the server stopping", "promotion", p.ID)
		case err != nil:
			s.finish(ctx, p.ID, store.PromotionFailed, err.Error(), d.ID)
		case d.Outcome == store.DeploymentSucceeded:
			s.finish(ctx, p.ID, store.PromotionSucceeded, "deployed "+short(digest)+" to "+e.Name, d.ID)
		default:
			s.finish(ctx, p.ID, store.PromotionFailed, "deployment "+d.ID+" "+d.Outcome+": "+d.Reason, d.ID)
		}
	})
}

func (s *Service) finish(ctx context.Context, id, state, reason, deployment string) {
	ctx = context.WithoutCancel(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.o.Store.PromotionGet(ctx, id)
	if err == nil {
		p.State, p.Reason, p.UpdatedAt = state, reason, s.o.Now()
		if deployment != "" {
			p.Deployment = deployment
		}
		_, err = s.o.Store.PromotionUpdate(ctx, p)
	}
	if err != nil {
		s.o.Logger.Error("promote: record promotion state", "promotion", id, "state", state, "err", err)
	} else if f, ferr := s.o.Store.FreightGet(ctx, p.Freight); ferr == nil {
		s.record(ctx, f.RunID, state, fmt.Sprintf("%s to %s: %s", id, p.Environment, reason))
	}
	s.o.Logger.Info("promote: "+state, "promotion", id, "reason", reason)
}

// specFor is e's deploy settings, or those the previous environment's deployment of digest
// used (with this environment's name and a port of its own).
func (s *Service) specFor(ctx context.Context, e Environment, digest string) (deploy.Spec, error) {
	if e.spec != nil {
		return *e.spec, nil
	}
	_, idx, _ := s.o.Config.Env(e.Name)
	for i := idx - 1; i >= 0; i-- {
		d, ok, err := s.verified(ctx, s.o.Config.Environments[i].Name, digest)
		if err != nil {
			return deploy.Spec{}, err
		}
		if ok {
			var spec deploy.Spec
			if err := json.Unmarshal(d.Config, &spec); err != nil {
				return deploy.Spec{}, fmt.Errorf("promote: settings of deployment %s: %w", d.ID, err)
			}
			spec.Environment, spec.Port, spec.PreviewPort = e.Name, 0, 0
			return spec, nil
		}
	}
	return deploy.Spec{}, fmt.Errorf("promote: %s has no deploy: settings in the config and no earlier environment ran %s to copy them from; add deploy: to %s", e.Name, short(digest), e.Name)
}

// artifactFor picks the digest of f that environment e runs.
func artifactFor(e Environment, f store.Freight) (string, error) {
	if e.Artifact != "" {
		if d, ok := f.Artifacts[e.Artifact]; ok {
			return d, nil
		}
		return "", fmt.Errorf("promote: freight %s has no artifact %q (it has %s); fix artifact: of %s", f.Alias, e.Artifact, strings.Join(artifactNames(f), ", "), e.Name)
	}
	uniq := map[string]bool{}
	var one string
	for _, d := range f.Artifacts {
		uniq[d], one = true, d
	}
	if len(uniq) != 1 {
		return "", fmt.Errorf("promote: freight %s has %d artifacts (%s); say which %s runs with artifact: STAGE", f.Alias, len(uniq), strings.Join(artifactNames(f), ", "), e.Name)
	}
	return one, nil
}

func artifactNames(f store.Freight) []string {
	var out []string
	for k := range f.Artifacts {
		out = append(out, k)
	}
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func short(sha string) string {
	sha = strings.TrimPrefix(sha, "sha256:")
	return sha[:min(12, len(sha))]
}

// logReporter sends a promotion's deployment log to the server log: a promotion has no run
// of its own to record events in.
type logReporter struct {
	l  *slog.Logger
	id string
}

func (r logReporter) Log(line string)       { r.l.Info("promote: deploy", "promotion", r.id, "line", line) }
func (r logReporter) Event(run.Event) error { return nil }
