package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/paved/paved/internal/deploy/local"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

var (
	// ErrUnknownEnvironment: no deployment was ever recorded for the environment.
	ErrUnknownEnvironment = errors.New("deploy: unknown environment")
	// ErrNothingToRollBack: the environment has no earlier successful deployment.
	ErrNothingToRollBack = errors.New("deploy: nothing to roll back to")
	// ErrBadRequest: the deployment's settings or artifact are wrong; the message says how.
	ErrBadRequest = errors.New("deploy: bad request")
)

// Blobs is where artifacts are read by digest (cache.Blobs).
type Blobs interface {
	Open(digest string) (*os.File, error)
}

// History is the deployment history (the store; see store.Deployment).
type History interface {
	DeploymentAppend(ctx context.Context, d store.Deployment) error
	DeploymentFinish(ctx context.Context, p store.DeploymentFinishParams) error
	DeploymentGet(ctx context.Context, id string) (store.Deployment, error)
	DeploymentList(ctx context.Context, p store.DeploymentListParams) ([]store.Deployment, error)
}

// Reporter is how a deployment reports: schedule.KindRecorder for a deploy stage.
type Reporter interface {
	Log(line string)
	Event(e run.Event) error
}

// Config wires a Controller.
type Config struct {
	// Dir keeps the controller's files: releases/ (binaries by digest) and envs/ (each
	// environment's address). Required.
	Dir     string
	Blobs   Blobs   // required
	History History // required
	// Verify checks the artifact's bytes (its signature, provenance and the environment's
	// policy) before every deployment, rollbacks included; a refusal (err wrapping
	// ErrRefused) fails the deployment with its reason, before anything starts. Default:
	// none, every artifact is deployed.
	Verify func(ctx context.Context, environment, digest string, r io.Reader) error
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Leases, when set (servers sharing PostgreSQL), make this controller act on an
	// environment only while it holds its lease (lease.go). Owner names this server in
	// them; LeaseTTL is how soon a dead server's environments move. Default: none, this
	// controller acts on every environment; LeaseTTL 15s.
	Leases   Leases
	Owner    string
	LeaseTTL time.Duration
	// Kubernetes runs the deployments whose Spec.Target is kubernetes (package deploy/kube,
	// wired by cmd/): it returns the outcome (succeeded, failed, rolled_back) and reason.
	// Default: none; such deployments fail, saying so.
	Kubernetes func(ctx context.Context, id string, spec Spec, artifact string, rep Reporter) (outcome, reason string, err error)
	// KubernetesResume gets, on Start, the spec of every environment whose last successful
	// deployment had target kubernetes, so that the target finishes what it left pending
	// there (deploy/kube's Target.Resume: blue-green scale-downs); the cluster, not this
	// controller, runs such an environment. Default: none.
	KubernetesResume func(ctx context.Context, spec Spec) error
}

// Controller owns the environments of the local target and runs deployments to them, one
// at a time per environment. Start brings every environment back to its last successful
// deployment; Stop takes them all down (they are paved's own processes). Its methods may
// be called from any goroutine between Start and Stop.
type Controller struct {
	cfg Config
	log *slog.Logger

	mu   sync.Mutex
	envs map[string]*environment
	wg   sync.WaitGroup
	ctx  context.Context
	stop context.CancelFunc

	leases leaseState
}

// environment is one environment: its proxy, the release it serves, and what is going on.
type environment struct {
	name  string
	sem   chan struct{} // held by the deployment in progress
	proxy *local.Proxy

	mu       sync.Mutex
	stable   *release
	warm     *release // blue-green's previous release, kept for instant rollback
	warmStop *time.Timer
	live     *run.Deployment // the latest progress of the deployment in progress, or the last one
	seq      int             // for replica ids
}

// release is one artifact with its settings and its running replicas.
type release struct {
	rec      store.Deployment
	spec     Spec
	binary   string
	replicas []*local.Replica
}

// New checks cfg and makes a controller; Start it before use.
func New(cfg Config) (*Controller, error) {
	if cfg.Dir == "" || cfg.Blobs == nil || cfg.History == nil {
		return nil, errors.New("deploy: Config.Dir, Blobs and History are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = 15 * time.Second
	}
	if cfg.Leases != nil && cfg.Owner == "" {
		return nil, errors.New("deploy: Config.Owner is required with Leases")
	}
	for _, d := range []string{"releases", "envs"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("deploy: %w", err)
		}
	}
	return &Controller{cfg: cfg, log: cfg.Logger, envs: map[string]*environment{}, leases: leaseState{held: map[string]bool{}}}, nil
}

// Start marks deployments a previous process left in progress as interrupted, and brings
// each environment back to its last successful deployment in the background (a deployment
// to it waits until that is done).
func (c *Controller) Start(ctx context.Context) error {
	c.ctx, c.stop = context.WithCancel(context.WithoutCancel(ctx))
	h := c.cfg.History
	open, err := h.DeploymentList(ctx, store.DeploymentListParams{Outcome: store.DeploymentInProgress, Limit: 1000})
	if err != nil {
		return fmt.Errorf("deploy: start: %w", err)
	}
	for _, d := range open {
		if ok, err := c.holds(ctx, d.Environment); err != nil || !ok {
			continue // another live server deploys it
		}
		err := h.DeploymentFinish(ctx, store.DeploymentFinishParams{ID: d.ID, Outcome: store.DeploymentInterrupted,
			Reason: "the server stopped while it ran", FinishedAt: c.cfg.Now()})
		if err != nil && !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("deploy: start: %w", err)
		}
	}
	if err := c.restoreAll(ctx); err != nil {
		return err
	}
	if c.cfg.Leases != nil {
		c.leases.renewed = c.cfg.Now()
		c.wg.Add(1)
		go c.leaseLoop()
	}
	return nil
}

// restoreAll brings back every environment this controller does not serve yet and may act
// on (all of them without Leases) to its last successful deployment, in the background.
func (c *Controller) restoreAll(ctx context.Context) error {
	h := c.cfg.History
	done, err := h.DeploymentList(ctx, store.DeploymentListParams{Outcome: store.DeploymentSucceeded, Limit: 1000})
	if err != nil {
		return fmt.Errorf("deploy: start: %w", err)
	}
	last := map[string]store.Deployment{}
	for _, d := range done { // newest first
		if _, ok := last[d.Environment]; !ok {
			last[d.Environment] = d
		}
	}
	for _, d := range last {
		if c.tornDown(d.Environment) {
			continue // a closed pull request's preview stays down
		}
		c.mu.Lock()
		_, serving := c.envs[d.Environment]
		c.mu.Unlock()
		if serving {
			continue
		}
		if ok, err := c.holds(ctx, d.Environment); err != nil || !ok {
			continue
		}
		var spec Spec
		if err := json.Unmarshal(d.Config, &spec); err != nil {
			c.log.Error("deploy: cannot restore environment", "environment", d.Environment, "err", err)
			continue
		}
		if spec.Target == TargetKubernetes {
			// Never as local processes: the cluster still runs it.
			if resume := c.cfg.KubernetesResume; resume != nil {
				c.wg.Go(func() {
					if err := resume(c.ctx, spec); err != nil {
						c.log.Error("deploy: resume kubernetes environment", "environment", d.Environment, "err", err)
					}
				})
			}
			continue
		}
		env, err := c.env(spec)
		if err != nil {
			c.log.Error("deploy: cannot restore environment", "environment", d.Environment, "err", err)
			continue
		}
		env.sem <- struct{}{}
		c.wg.Go(func() {
			defer func() { <-env.sem }()
			if err := c.restore(env, d, spec); err != nil {
				c.log.Error("deploy: restore environment", "environment", d.Environment, "deployment", d.ID, "err", err)
				return
			}
			c.log.Info("deploy: environment restored", "environment", d.Environment, "deployment", d.ID, "url", env.proxy.URL())
		})
	}
	return nil
}

func (c *Controller) restore(env *environment, d store.Deployment, spec Spec) error {
	bin, err := c.materialize(d.Artifact)
	if err != nil {
		return err
	}
	rel := &release{rec: d, spec: spec, binary: bin}
	reps, err := c.startReplicas(c.ctx, env, rel, spec.Replicas)
	if err != nil {
		return err
	}
	rel.replicas = reps
	env.proxy.SetPools([]local.Pool{{Name: trackStable, Weight: 100, Replicas: reps}})
	env.mu.Lock()
	env.stable = rel
	env.mu.Unlock()
	return nil
}

// Stop stops every replica and proxy; deployments in progress end with ctx errors.
func (c *Controller) Stop() {
	if c.stop != nil {
		c.stop()
	}
	c.wg.Wait()
	defer c.releaseAll()
	c.mu.Lock()
	envs := c.envs
	c.envs = map[string]*environment{}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, env := range envs {
		env.mu.Lock()
		rels := []*release{env.stable, env.warm}
		if env.warmStop != nil {
			env.warmStop.Stop()
		}
		env.mu.Unlock()
		env.proxy.Close()
		for _, rel := range rels {
			if rel != nil {
				for _, r := range rel.replicas {
					wg.Go(func() { r.Stop(0) })
				}
			}
		}
	}
	wg.Wait()
}

// envFile is what is kept of an environment between processes: its address.
type envFile struct {
	Addr string `json:"addr"`
}

// env returns the environment named by spec, making it (and its proxy) on first use.
func (c *Controller) env(spec Spec) (*environment, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if env, ok := c.envs[spec.Environment]; ok {
		return env, nil
	}
	path := filepath.Join(c.cfg.Dir, "envs", spec.Environment+".json")
	addr := "127.0.0.1:0"
	if spec.Port > 0 {
		addr = fmt.Sprintf("127.0.0.1:%d", spec.Port)
	} else if b, err := os.ReadFile(path); err == nil {
		var f envFile
		if json.Unmarshal(b, &f) == nil && f.Addr != "" {
			addr = f.Addr
		}
	}
	p, err := local.NewProxy(addr, c.log.With("environment", spec.Environment))
	if err != nil && spec.Port == 0 && addr != "127.0.0.1:0" {
		c.log.Warn("deploy: the environment's previous address is taken; picking another", "environment", spec.Environment, "addr", addr)
		p, err = local.NewProxy("127.0.0.1:0", c.log.With("environment", spec.Environment))
	}
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(envFile{Addr: p.Addr()})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		p.Close()
		return nil, fmt.Errorf("deploy: %w", err)
	}
	env := &environment{name: spec.Environment, sem: make(chan struct{}, 1), proxy: p}
	c.envs[spec.Environment] = env
	_ = os.Remove(filepath.Join(c.cfg.Dir, "envs", spec.Environment+".down")) // deployed to again: it is back
	return env, nil
}

// materialize copies an artifact's blob to releases/HEX/service, executable, once.
// ErrRefused is wrapped when Config.Verify refuses an artifact.
var ErrRefused = errors.New("deploy: artifact refused")

// verify runs Config.Verify on the very file the replicas will run.
func (c *Controller) verify(ctx context.Context, environment, digest, bin string) error {
	if c.cfg.Verify == nil {
		return nil
	}
	f, err := os.Open(bin)
	if err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	defer f.Close()
	if err := c.cfg.Verify(ctx, environment, digest, f); err != nil {
		if errors.Is(err, ErrRefused) {
			return fmt.Errorf("%w: %s refused for %s: %v", ErrBadRequest, digest, environment, err)
		}
		return fmt.Errorf("deploy: verify %s: %w", digest, err)
	}
	return nil
}

func (c *Controller) materialize(digest string) (string, error) {
	hex, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(hex) != 64 || strings.ContainsAny(hex, "/.") {
		return "", fmt.Errorf("%w: artifact digest %q is not sha256:<64 hex>", ErrBadRequest, digest)
	}
	dir := filepath.Join(c.cfg.Dir, "releases", hex)
	bin := filepath.Join(dir, "service")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	src, err := c.cfg.Blobs.Open(digest)
	if err != nil {
		return "", fmt.Errorf("deploy: artifact %s: %w", digest, err)
	}
	defer src.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("deploy: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".service-*")
	if err != nil {
		return "", fmt.Errorf("deploy: %w", err)
	}
	_, err = io.Copy(tmp, src)
	err = errors.Join(err, tmp.Chmod(0o755), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), bin)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("deploy: artifact %s: %w", digest, err)
	}
	return bin, nil
}

// startReplicas starts n replicas of rel and waits until all are ready, within the spec's
// readiness timeout; on failure it stops them and says which one failed how.
func (c *Controller) startReplicas(ctx context.Context, env *environment, rel *release, n int) ([]*local.Replica, error) {
	spec := rel.spec
	var envv []string
	for k, v := range spec.Env {
		envv = append(envv, k+"="+v)
	}
	sort.Strings(envv)
	rs := local.ReplicaSpec{Binary: rel.binary, Version: version(rel.rec.Artifact), Args: spec.Args, Env: envv,
		Startup: spec.Startup, Readiness: spec.Readiness, Liveness: spec.Liveness, StopGrace: 10 * time.Second}
	var reps []*local.Replica
	stopAll := func() {
		var wg sync.WaitGroup
		for _, r := range reps {
			wg.Go(func() { r.Stop(0) })
		}
		wg.Wait()
	}
	for range n {
		env.mu.Lock()
		env.seq++
		id := fmt.Sprintf("%s-%s-%d", env.name, rs.Version, env.seq)
		env.mu.Unlock()
		r, err := local.StartReplica(id, rs, c.log.With("environment", env.name))
		if err != nil {
			stopAll()
			return nil, err
		}
		reps = append(reps, r)
	}
	wctx, cancel := context.WithTimeout(ctx, spec.ReadinessTimeout)
	defer cancel()
	errs := make([]error, len(reps))
	var wg sync.WaitGroup
	for i, r := range reps {
		wg.Go(func() { errs[i] = r.WaitReady(wctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		stopAll()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("not ready within readiness_timeout %s: %w", spec.ReadinessTimeout, err)
	}
	return reps, nil
}

func stopReplicas(reps []*local.Replica, drain time.Duration) {
	var wg sync.WaitGroup
	for _, r := range reps {
		wg.Go(func() { r.Stop(drain) })
	}
	wg.Wait()
}

// Request is one deployment to make.
type Request struct {
	Spec     Spec
	Artifact string // the service binary's digest in Blobs
	// Provenance, for the history.
	RunID, Stage, Repo, SHA string
	TriggeredBy             string
	RollbackOf              string
}

// Deploy runs one deployment to completion and returns its record (Outcome succeeded,
// failed or rolled_back). It waits for a deployment in progress to the same environment. An
// error means it could not be carried out (ctx ended, the history failed); the environment
// is then left serving its previous release.
func (c *Controller) Deploy(ctx context.Context, req Request, rep Reporter) (store.Deployment, error) {
	spec, err := req.Spec.Defaults()
	if err != nil {
		return store.Deployment{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if spec.Target == TargetKubernetes {
		return c.deployKubernetes(ctx, req, spec, rep)
	}
	bin, err := c.materialize(req.Artifact)
	if err != nil {
		return store.Deployment{}, err
	}
	if err := c.verify(ctx, spec.Environment, req.Artifact, bin); err != nil {
		return store.Deployment{}, err
	}
	env, err := c.env(spec)
	if err != nil {
		return store.Deployment{}, err
	}
	if want := fmt.Sprintf("127.0.0.1:%d", spec.Port); spec.Port > 0 && env.proxy.Addr() != want {
		return store.Deployment{}, fmt.Errorf("%w: %s listens on %s, not on port %d: an environment keeps its address while the server runs (restart the server to move it, or remove port:)",
			ErrBadRequest, spec.Environment, env.proxy.Addr(), spec.Port)
	}
	if err := c.waitHold(ctx, spec.Environment); err != nil {
		return store.Deployment{}, err
	}
	select {
	case env.sem <- struct{}{}:
	case <-ctx.Done():
		return store.Deployment{}, fmt.Errorf("deploy: waiting for the deployment in progress to %s: %w", spec.Environment, ctx.Err())
	}
	defer func() { <-env.sem }()
	cfg, hash := spec.Hash()
	rec := store.Deployment{
		ID: "dep-" + uuid.NewString()[:13], Environment: spec.Environment, Strategy: spec.Strategy,
		Artifact: req.Artifact, Version: version(req.Artifact), Config: cfg, ConfigHash: hash,
		RunID: req.RunID, Stage: req.Stage, Repo: req.Repo, SHA: req.SHA, TriggeredBy: req.TriggeredBy, RollbackOf: req.RollbackOf,
		Outcome: store.DeploymentInProgress, StartedAt: c.cfg.Now(),
	}
	if err := c.cfg.History.DeploymentAppend(ctx, rec); err != nil {
		return rec, fmt.Errorf("deploy: record deployment: %w", err)
	}
	d := &deployment{c: c, env: env, rep: rep, spec: spec, new: &release{rec: rec, spec: spec, binary: bin}}
	d.base = run.Deployment{ID: rec.ID, Environment: spec.Environment, Strategy: spec.Strategy, Artifact: req.Artifact,
		Version: rec.Version, URL: env.proxy.URL()}
	env.mu.Lock()
	d.old = env.stable
	env.mu.Unlock()

	outcome, reason, err := d.run(ctx)
	if err != nil {
		// Leave the environment as it was: whatever the deployment started goes.
		d.abandon()
		outcome, reason = store.DeploymentFailed, err.Error()
	}
	rec.Outcome, rec.Reason, rec.FinishedAt = outcome, reason, c.cfg.Now()
	fctx := context.WithoutCancel(ctx)
	if ferr := c.cfg.History.DeploymentFinish(fctx, store.DeploymentFinishParams{ID: rec.ID, Outcome: outcome, Reason: reason, FinishedAt: rec.FinishedAt}); ferr != nil {
		return rec, errors.Join(err, fmt.Errorf("deploy: record outcome: %w", ferr))
	}
	if err != nil {
		return rec, err
	}
	d.log("deployment %s %s: %s", rec.ID, outcome, reasonOr(reason, "verified"))
	if eerr := d.event(run.DeploymentFinished, func(x *run.Deployment) { x.Phase, x.Outcome, x.Reason = "done", outcome, reason }); eerr != nil {
		return rec, eerr
	}
	return rec, nil
}

func reasonOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// deployment is one Deploy in progress.
type deployment struct {
	c    *Controller
	env  *environment
	rep  Reporter
	spec Spec
	old  *release // what the environment served before; nil for its first deployment
	new  *release
	base run.Deployment
	// started lists replicas this deployment started that are not yet the environment's
	// stable release, for abandon.
	mu      sync.Mutex
	started []*local.Replica
}

func (d *deployment) log(format string, args ...any) {
	if d.rep != nil {
		d.rep.Log(fmt.Sprintf(format, args...))
	}
}

// event reports progress: the base deployment with what set changes, also kept as the
// environment's live state.
func (d *deployment) event(t run.Type, set func(*run.Deployment)) error {
	x := d.base
	if set != nil {
		set(&x)
	}
	d.env.mu.Lock()
	live := x
	d.env.live = &live
	d.env.mu.Unlock()
	if d.rep == nil {
		return nil
	}
	return d.rep.Event(run.Event{Type: t, Deployment: &x})
}

func (d *deployment) track(reps []*local.Replica) {
	d.mu.Lock()
	d.started = append(d.started, reps...)
	d.mu.Unlock()
}

// abandon puts the environment back on its previous release after an error.
func (d *deployment) abandon() {
	if d.old != nil {
		d.env.proxy.SetPools([]local.Pool{{Name: trackStable, Weight: 100, Replicas: d.old.replicas}})
	} else {
		d.env.proxy.SetPools(nil)
	}
	d.mu.Lock()
	reps := d.started
	d.started = nil
	d.mu.Unlock()
	stopReplicas(reps, 0)
}

// promoteTo makes rel the environment's stable release.
func (d *deployment) promoteTo(rel *release) {
	d.env.mu.Lock()
	d.env.stable = rel
	d.env.mu.Unlock()
	d.mu.Lock()
	d.started = nil
	d.mu.Unlock()
}

// run carries the deployment out; it returns the outcome, or an error when it could not.
func (d *deployment) run(ctx context.Context) (outcome, reason string, err error) {
	spec := d.spec
	if err := d.event(run.DeploymentStarted, func(x *run.Deployment) { x.Phase = "progressing" }); err != nil {
		return "", "", err
	}
	d.log("deploying %s to %s (%s, %d replicas) at %s", d.base.Version, spec.Environment, spec.Strategy, spec.Replicas, d.env.proxy.URL())
	if d.old != nil && d.old.rec.Artifact == d.new.rec.Artifact && d.old.rec.ConfigHash == d.new.rec.ConfigHash && d.liveOK() {
		// A stage re-run after a restart, or a re-deploy of what runs: nothing to change.
		d.log("%s already serves %s with these settings", spec.Environment, d.base.Version)
		return store.DeploymentSucceeded, "already deployed", nil
	}
	switch {
	case d.old == nil:
		outcome, reason, err = d.initial(ctx)
	case spec.Strategy == Canary:
		outcome, reason, err = d.canary(ctx)
	case spec.Strategy == BlueGreen:
		outcome, reason, err = d.blueGreen(ctx)
	default:
		outcome, reason, err = d.rolling(ctx)
	}
	return outcome, reason, err
}

// liveOK: every replica of the stable release is up (a re-run must not keep a broken one).
func (d *deployment) liveOK() bool {
	for _, r := range d.old.replicas {
		if !r.Ready() {
			return false
		}
	}
	return len(d.old.replicas) > 0
}

// initial deploys to an environment that serves nothing yet: start, route, verify.
func (d *deployment) initial(ctx context.Context) (string, string, error) {
	reps, err := d.c.startReplicas(ctx, d.env, d.new, d.spec.Replicas)
	if err != nil {
		if ctx.Err() != nil {
			return "", "", ctx.Err()
		}
		return store.DeploymentFailed, err.Error(), nil
	}
	d.track(reps)
	d.new.replicas = reps
	d.env.proxy.SetPools([]local.Pool{{Name: trackStable, Weight: 100, Replicas: reps}})
	if err := d.event(run.DeploymentStepAdvanced, func(x *run.Deployment) {
		x.Step, x.Steps, x.Weights, x.Phase = 1, 1, map[string]int{trackStable: 100}, "progressing"
	}); err != nil {
		return "", "", err
	}
	if why, err := d.verify(ctx, d.new); err != nil || why != "" {
		if err != nil {
			return "", "", err
		}
		d.env.proxy.SetPools(nil)
		stopReplicas(reps, 0)
		return store.DeploymentFailed, why, nil
	}
	d.promoteTo(d.new)
	return store.DeploymentSucceeded, "", nil
}
